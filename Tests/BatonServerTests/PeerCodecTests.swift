import BatonProtocol
import BatonRaft
import NIOCore
import Testing

@testable import BatonServer

@Suite struct PeerCodecTests {
    static let samples: [RaftMessage] = [
        .preVote(lastIndex: LogIndex(7), lastTerm: Term(3)),
        .preVoteReply(granted: true),
        .vote(lastIndex: LogIndex(.max), lastTerm: Term(.max)),
        .voteReply(granted: false),
        .append(prevIndex: LogIndex(10), prevTerm: Term(2), entries: [], commit: LogIndex(9)),
        .append(
            prevIndex: LogIndex(10), prevTerm: Term(2),
            entries: [LogEntry(term: Term(2), index: LogIndex(11), data: [1, 2, 3]), LogEntry(term: Term(3), index: LogIndex(12), data: [])],
            commit: LogIndex(11)),
        .appendReply(success: false, index: LogIndex(10), hint: LogIndex(4)),
        .heartbeat(commit: LogIndex(5), round: 99),
        .heartbeatReply(round: 99, syncing: true),
        .heartbeatReply(round: 100, syncing: false),
        .installSnapshot(Snapshot(index: LogIndex(100), term: Term(4), data: Array(repeating: 0xAB, count: 1000))),
    ]

    /// Every message survives encode and decode unchanged, several frames in one buffer included.
    @Test func everyMessageRoundTrips() throws {
        var buffer = ByteBuffer()
        let envelopes = Self.samples.enumerated().map {
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(UInt64(2 + $0.offset % 2)), term: Term(UInt64($0.offset)), message: $0.element)
        }
        for e in envelopes { e.encode(into: &buffer) }
        for expected in envelopes {
            guard let length = buffer.readInteger(as: UInt32.self), var body = buffer.readSlice(length: Int(length)) else {
                Issue.record("frame missing for \(expected.message)")
                return
            }
            #expect(try RaftEnvelope.decode(&body) == expected)
        }
        #expect(buffer.readableBytes == 0)
    }

    /// Truncated, padded, unknown and lying frames are refused with an error, never a crash.
    @Test func badFramesAreRefused() throws {
        for message in Self.samples {
            var full = ByteBuffer()
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(2), term: Term(1), message: message).encode(into: &full)
            full.moveReaderIndex(forwardBy: 4)
            let body = Array(full.readableBytesView)
            for cut in 0..<body.count {
                var short = ByteBuffer(bytes: body[..<cut])
                #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&short) }
            }
            var padded = ByteBuffer(bytes: body + [0])
            #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&padded) }
        }
        var unknown = ByteBuffer(bytes: [42] + Array(repeating: 0, count: 24))
        #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&unknown) }
        // An append claiming four billion entries in a few bytes is refused before allocating for them.
        var lying = ByteBuffer(bytes: [5] + Array(repeating: 0, count: 48) + [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&lying) }
    }
}
