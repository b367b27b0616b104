import BatonCore
import BatonProtocol
import NIOCore

/// The first six bytes each way on every peer connection: `BTNR` and a peer protocol version (`u16`,
/// big-endian). The member that opens the connection announces the highest version it speaks; the
/// listener answers with the version both will use, the lower of the two highest, or, if it no
/// longer speaks that one (below its `lowest`), closes the connection with a warning naming both.
/// The opener sends no message before the answer. So a build that speaks the version before its own
/// as well can join a cluster of the previous build, and members are upgraded one at a time; a
/// member of a build that frames Raft messages differently is refused, never misread.
///
/// | version | change |
/// |---|---|
/// | 1 | first versioned peer protocol (HEARTBEAT_REPLY carries the `syncing` flag); one-way preamble |
/// | 2 | the listener answers the preamble with the version both use; HEARTBEAT carries the leader's cluster time; INSTALL_SNAPSHOT travels in chunks |
/// | 3 | INSTALL_SNAPSHOT may carry snapshot format 2 (digests of remembered answers); to a member of version 2 the leader sends format 1 |
/// | 4 | INSTALL_SNAPSHOT may carry snapshot format 3 (the auth store); to a member of version 3 the leader sends format 2 |
/// | 5 | INSTALL_SNAPSHOT may carry snapshot format 4 (the schedules); to a member of version 4 the leader sends format 3 |
/// | 6 | INSTALL_SNAPSHOT may carry snapshot format 5 (the sessions' owners); to a member of version 5 the leader sends format 4 |
/// | 7 | schedule slots are judged on the calendar clock (`Node.calendarPeerProtocol`): a leader does so only once every member agreed 7, as older builds apply a fire only once its slot's time came on the cluster's clock |
/// | 8 | log entries may hold JOB_ADD_BATCH and JOB_CLAIM_BATCH (`Node.batchPeerProtocol`): a leader logs them only once every member agreed 8 |
/// | 9 | log entries may hold JOB_COMPLETE_BATCH (`Node.completeBatchPeerProtocol`), under the same rule |
enum PeerPreamble {
    static let magic: [UInt8] = Array("BTNR".utf8)
    /// The versions this build speaks. Version 1 had no answer to its preamble, so nothing before 2
    /// can be spoken to.
    static let lowest: UInt16 = 2
    static let highest: UInt16 = 9
    static let size = magic.count + 2

    /// The newest snapshot format (`StateMachine.snapshotVersion`) a member speaking `version` reads.
    static func snapshotVersion(forPeerProtocol version: UInt16) -> UInt16 {
        switch version {
        case ...2: 1
        case 3: 2
        case 4: 3
        case 5: 4
        default: StateMachine.snapshotVersion
        }
    }

    static func write(version: UInt16 = highest, into buffer: inout ByteBuffer) {
        buffer.writeBytes(magic)
        buffer.writeInteger(version)
    }

    /// Reads a preamble and returns its version (`buffer` holds at least `size` bytes).
    static func read(_ buffer: inout ByteBuffer) throws -> UInt16 {
        guard let bytes = buffer.readBytes(length: magic.count), let version = buffer.readInteger(as: UInt16.self) else {
            throw ErrorReply(.malformedFrame, "peer connection closed before its preamble")
        }
        guard bytes == magic else {
            throw ErrorReply(
                .malformedFrame,
                "not a Baton peer connection (no BTNR preamble): another program, a client on the raft port, or a member built before peer protocol versions")
        }
        return version
    }

    /// The listener's answer to an opener that speaks versions up to `theirs`.
    static func agree(theirs: UInt16) throws -> UInt16 {
        let version = min(theirs, highest)
        guard version >= lowest else {
            throw ErrorReply(
                .unsupportedVersion,
                "peer speaks peer protocol versions up to \(theirs); this member speaks \(lowest)...\(highest): upgrade that member to a build that speaks \(lowest)")
        }
        return version
    }

    /// The opener's check of the listener's answer: a version this member speaks.
    static func accept(answer: UInt16) throws -> UInt16 {
        guard (lowest...highest).contains(answer) else {
            throw ErrorReply(
                .unsupportedVersion,
                "peer answered peer protocol version \(answer); this member speaks \(lowest)...\(highest): upgrade that member to a build that speaks \(highest)")
        }
        return answer
    }
}

/// Fired inbound on a peer connection once its version is agreed (on both sides); only then does the
/// opener send.
struct PeerProtocolAgreed: Sendable {
    var version: UInt16
}
