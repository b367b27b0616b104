import BatonProtocol
import BatonRaft

/// A piece of a snapshot on the wire: `bytes` are the snapshot's bytes from `offset` on, of `total`.
struct SnapshotChunk: Hashable {
    var from: NodeIndex
    var to: NodeIndex
    var term: Term
    var index: LogIndex
    var snapshotTerm: Term
    var total: UInt64
    var offset: UInt64
    var bytes: [UInt8]
}

/// Puts a connection's snapshot chunks back together. Chunks come in order on one connection; one
/// that does not continue the snapshot being assembled (another snapshot, a gap) is refused, and a
/// chunk at offset 0 starts over (the sender began again after a reconnect).
struct SnapshotAssembler {
    private var partial: SnapshotChunk?

    /// The message `frame` completes, if any.
    mutating func add(_ frame: PeerFrame) throws -> RaftEnvelope? {
        let chunk: SnapshotChunk
        switch frame {
        case .message(let envelope): return envelope
        case .snapshotChunk(let c): chunk = c
        }
        var whole: SnapshotChunk
        if chunk.offset == 0 {
            whole = chunk
            whole.bytes.reserveCapacity(Int(clamping: min(chunk.total, 64 << 20)))  // grows past that as chunks come
        } else {
            // Taken out, so `whole` is the bytes' only owner: appended in place, not copied.
            guard var p = partial.take(),
                p.from == chunk.from && p.term == chunk.term && p.index == chunk.index && p.snapshotTerm == chunk.snapshotTerm
                    && p.total == chunk.total && UInt64(p.bytes.count) == chunk.offset
            else {
                throw ErrorReply(.malformedFrame, "snapshot chunk at \(chunk.offset) does not continue the snapshot being received")
            }
            p.bytes += chunk.bytes
            whole = p
        }
        guard UInt64(whole.bytes.count) == whole.total else {
            partial = whole
            return nil
        }
        partial = nil
        return RaftEnvelope(
            from: whole.from, to: whole.to, term: whole.term,
            message: .installSnapshot(Snapshot(index: whole.index, term: whole.snapshotTerm, data: whole.bytes)))
    }
}
