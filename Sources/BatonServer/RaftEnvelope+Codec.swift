import BatonProtocol
import BatonRaft
import NIOCore

/// Raft messages between nodes (peer protocol version 2, see `PeerPreamble`), framed like the client protocol: a `u32` length counting the bytes
/// after it, then `type: u8`, `from: u64`, `to: u64`, `term: u64` and the message's fields, all
/// big-endian. Entries are `term: u64, index: u64, length: u32, bytes`; a snapshot is
/// `index: u64, term: u64, length: u32, bytes`.
///
/// | type | message | fields |
/// |---|---|---|
/// | 1 | PRE_VOTE | last_index u64, last_term u64 |
/// | 2 | PRE_VOTE_REPLY | granted u8 |
/// | 3 | VOTE | last_index u64, last_term u64 |
/// | 4 | VOTE_REPLY | granted u8 |
/// | 5 | APPEND | prev_index u64, prev_term u64, commit u64, count u32, entries |
/// | 6 | APPEND_REPLY | success u8, index u64, hint u64 |
/// | 7 | HEARTBEAT | commit u64, round u64, time u64 (the leader's cluster time, ms) |
/// | 8 | HEARTBEAT_REPLY | round u64, syncing u8 (entries received, not yet synced) |
/// | 9 | INSTALL_SNAPSHOT | index u64, term u64, total u64, offset u64, length u32, bytes: one chunk |
///
/// A snapshot travels in chunks of at most `snapshotChunkSize` bytes, in order, each its own frame
/// (`SnapshotAssembler` puts them together): however large the state, no frame nears the limit.
extension RaftEnvelope {
    static let snapshotChunkSize = 4 << 20

    /// Appends this message as one length-prefixed frame (a large snapshot: one per chunk).
    func encode(into b: inout ByteBuffer, snapshotChunkSize: Int = Self.snapshotChunkSize) {
        if case .installSnapshot(let snapshot) = message {
            var offset = 0
            repeat {
                let end = min(snapshot.data.count, offset + snapshotChunkSize)
                let start = b.writerIndex
                b.writeInteger(UInt32(0))
                b.writeInteger(UInt8(9))
                b.writeInteger(from.rawValue)
                b.writeInteger(to.rawValue)
                b.writeInteger(term.rawValue)
                b.writeInteger(snapshot.index.rawValue)
                b.writeInteger(snapshot.term.rawValue)
                b.writeInteger(UInt64(snapshot.data.count))
                b.writeInteger(UInt64(offset))
                b.writeInteger(UInt32(end - offset))
                b.writeBytes(snapshot.data[offset..<end])
                b.setInteger(UInt32(b.writerIndex - start - 4), at: start)
                offset = end
            } while offset < snapshot.data.count
            return
        }
        let start = b.writerIndex
        b.writeInteger(UInt32(0))
        switch message {
        case .preVote: b.writeInteger(UInt8(1))
        case .preVoteReply: b.writeInteger(UInt8(2))
        case .vote: b.writeInteger(UInt8(3))
        case .voteReply: b.writeInteger(UInt8(4))
        case .append: b.writeInteger(UInt8(5))
        case .appendReply: b.writeInteger(UInt8(6))
        case .heartbeat: b.writeInteger(UInt8(7))
        case .heartbeatReply: b.writeInteger(UInt8(8))
        case .installSnapshot: b.writeInteger(UInt8(9))
        }
        b.writeInteger(from.rawValue)
        b.writeInteger(to.rawValue)
        b.writeInteger(term.rawValue)
        switch message {
        case .preVote(let lastIndex, let lastTerm), .vote(let lastIndex, let lastTerm):
            b.writeInteger(lastIndex.rawValue)
            b.writeInteger(lastTerm.rawValue)
        case .preVoteReply(let granted), .voteReply(let granted):
            b.writeInteger(UInt8(granted ? 1 : 0))
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            b.writeInteger(prevIndex.rawValue)
            b.writeInteger(prevTerm.rawValue)
            b.writeInteger(commit.rawValue)
            b.writeInteger(UInt32(entries.count))
            for entry in entries {
                b.writeInteger(entry.term.rawValue)
                b.writeInteger(entry.index.rawValue)
                b.writeInteger(UInt32(entry.data.count))
                b.writeBytes(entry.data)
            }
        case .appendReply(let success, let index, let hint):
            b.writeInteger(UInt8(success ? 1 : 0))
            b.writeInteger(index.rawValue)
            b.writeInteger(hint.rawValue)
        case .heartbeat(let commit, let round, let context):
            b.writeInteger(commit.rawValue)
            b.writeInteger(round)
            b.writeInteger(context)
        case .heartbeatReply(let round, let syncing):
            b.writeInteger(round)
            b.writeInteger(UInt8(syncing ? 1 : 0))
        case .installSnapshot:
            preconditionFailure("encoded in chunks above")
        }
        b.setInteger(UInt32(b.writerIndex - start - 4), at: start)
    }

    /// Decodes a frame that holds a whole message (a snapshot in one chunk included).
    static func decode(_ body: inout ByteBuffer) throws -> RaftEnvelope {
        var assembler = SnapshotAssembler()
        guard let envelope = try assembler.add(try PeerFrame.decode(&body)) else {
            throw ErrorReply(.malformedFrame, "a snapshot chunk where a whole message was expected")
        }
        return envelope
    }
}

/// One peer frame: a whole message, or one chunk of a snapshot.
enum PeerFrame: Hashable {
    case message(RaftEnvelope)
    case snapshotChunk(SnapshotChunk)

    /// Decodes one frame's body (the bytes after the length); the body must be consumed exactly.
    static func decode(_ body: inout ByteBuffer) throws -> PeerFrame {
        func u64() throws -> UInt64 {
            guard let v = body.readInteger(as: UInt64.self) else { throw ErrorReply(.malformedFrame, "peer message ends early") }
            return v
        }
        func u32() throws -> UInt32 {
            guard let v = body.readInteger(as: UInt32.self) else { throw ErrorReply(.malformedFrame, "peer message ends early") }
            return v
        }
        func flag() throws -> Bool {
            guard let v = body.readInteger(as: UInt8.self), v <= 1 else { throw ErrorReply(.malformedFrame, "bad flag in a peer message") }
            return v == 1
        }
        func bytes() throws -> [UInt8] {
            let n = Int(try u32())
            guard let v = body.readBytes(length: n) else { throw ErrorReply(.malformedFrame, "peer message ends early") }
            return v
        }
        guard let type = body.readInteger(as: UInt8.self) else { throw ErrorReply(.malformedFrame, "empty peer message") }
        let from = NodeIndex(try u64()), to = NodeIndex(try u64()), term = Term(try u64())
        let message: RaftMessage
        switch type {
        case 1: message = .preVote(lastIndex: LogIndex(try u64()), lastTerm: Term(try u64()))
        case 2: message = .preVoteReply(granted: try flag())
        case 3: message = .vote(lastIndex: LogIndex(try u64()), lastTerm: Term(try u64()))
        case 4: message = .voteReply(granted: try flag())
        case 5:
            let prevIndex = LogIndex(try u64()), prevTerm = Term(try u64()), commit = LogIndex(try u64())
            let count = Int(try u32())
            guard count <= body.readableBytes / 20 else { throw ErrorReply(.malformedFrame, "entry count \(count) exceeds the frame") }
            var entries: [LogEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let term = Term(try u64()), index = LogIndex(try u64())
                entries.append(LogEntry(term: term, index: index, data: try bytes()))
            }
            message = .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case 6: message = .appendReply(success: try flag(), index: LogIndex(try u64()), hint: LogIndex(try u64()))
        case 7: message = .heartbeat(commit: LogIndex(try u64()), round: try u64(), context: try u64())
        case 8: message = .heartbeatReply(round: try u64(), syncing: try flag())
        case 9:
            let index = LogIndex(try u64()), snapshotTerm = Term(try u64()), total = try u64(), offset = try u64()
            let data = try bytes()
            guard offset <= total, UInt64(data.count) <= total - offset, data.count > 0 || total == 0 else {
                throw ErrorReply(.malformedFrame, "snapshot chunk at \(offset) of \(data.count) bytes does not fit its total of \(total)")
            }
            guard body.readableBytes == 0 else { throw ErrorReply(.malformedFrame, "\(body.readableBytes) bytes after a peer message") }
            return .snapshotChunk(
                SnapshotChunk(
                    from: from, to: to, term: term, index: index, snapshotTerm: snapshotTerm, total: total, offset: offset, bytes: data))
        default:
            throw ErrorReply(.unknownOpcode, "unknown peer message type \(type)")
        }
        guard body.readableBytes == 0 else { throw ErrorReply(.malformedFrame, "\(body.readableBytes) bytes after a peer message") }
        return .message(RaftEnvelope(from: from, to: to, term: term, message: message))
    }
}
