import BatonProtocol
import NIOCore

/// The first six bytes on every peer connection, sent by the member that opened it: `BTNR` and the
/// peer protocol version (`u16`, big-endian). A member of a build that frames Raft messages
/// differently is refused with an error that names both versions, instead of having its messages
/// misread. A cluster runs one peer protocol version: upgrade all members together.
///
/// | version | change |
/// |---|---|
/// | 1 | first versioned peer protocol (HEARTBEAT_REPLY carries the `syncing` flag) |
/// | 2 | HEARTBEAT carries the leader's cluster time; INSTALL_SNAPSHOT travels in chunks |
enum PeerPreamble {
    static let magic: [UInt8] = Array("BTNR".utf8)
    static let version: UInt16 = 2
    static let size = magic.count + 2

    static func write(into buffer: inout ByteBuffer) {
        buffer.writeBytes(magic)
        buffer.writeInteger(version)
    }

    /// Reads and checks a preamble (`buffer` holds at least `size` bytes).
    static func check(_ buffer: inout ByteBuffer) throws {
        guard let bytes = buffer.readBytes(length: magic.count), let theirs = buffer.readInteger(as: UInt16.self) else {
            throw ProtocolError(.malformedFrame, "peer connection closed before its preamble")
        }
        guard bytes == magic else {
            throw ProtocolError(
                .malformedFrame,
                "not a Baton peer connection (no BTNR preamble): another program, a client on the raft port, or a member built before peer protocol versions")
        }
        guard theirs == version else {
            throw ProtocolError(
                .unsupportedVersion,
                "peer speaks peer protocol version \(theirs); this member speaks \(version): run one build on every member")
        }
    }
}
