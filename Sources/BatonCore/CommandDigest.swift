import BatonProtocol
import NIOCore

/// A fingerprint of a command as it travels on the wire (its opcode and body, after the sequence
/// number), kept with the answer to it: a later request with the same sequence number and another
/// digest is a different request, refused with `SEQUENCE_REUSED`, never answered with this one's reply.
///
/// `FNV1a` over the encoded bytes. It is stored in snapshots and compared across members and
/// builds, so it must not change between runs or versions: Swift's `Hasher` is seeded per process and
/// cannot be used. Collisions only matter for a client that reuses a sequence number, and then only
/// let through what every retry got before this check existed (the remembered answer).
///
/// `unknown` (0) stands for no digest (an answer restored from a version-1 snapshot), not an
/// optional: a remembered answer is memory per client, and an optional would add 8 bytes to each.
/// A command whose digest is 0 is treated the same way, as every retry was before digests.
struct CommandDigest: Hashable, Sendable {
    var rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    static let unknown = CommandDigest(rawValue: 0)

    /// Whether a command with digest `other` is the one this digest was taken of (or may be: unknown).
    func admits(_ other: CommandDigest) -> Bool {
        self == other || self == .unknown || other == .unknown
    }

    /// The digest of `command`, encoded through `scratch` (cleared first; kept by the caller so a
    /// digest costs no allocation).
    init(_ command: Command, using scratch: inout ByteBuffer) {
        scratch.clear()
        scratch.writeU8(command.opcode.rawValue)
        command.encodeBody(into: &scratch)
        var hash = FNV1a()
        hash.add(scratch.readableBytesView)
        scratch.clear()
        rawValue = hash.value
    }
}
