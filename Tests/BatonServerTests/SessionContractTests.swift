import BatonProtocol
import BatonTestSupport
import NIOCore
import Testing

/// PROTOCOL.md §5 and §6 to the letter, in raw frames: which sequence numbers a node refuses as too
/// old, and what a retry sees (issue 19, items 1, 2, 3 and 9). These pin what the document now says.
@Suite(.timeLimit(.minutes(1))) struct SessionContractTests {
    /// A release of a lock nobody holds: applied, it is answered STALE_TOKEN, and that is remembered.
    func release(_ sequence: UInt64, token: UInt64 = 1) -> Request {
        .command(SequenceNumber(sequence), .releaseLock(key: "nobody", token: FencingToken(token)))
    }

    /// Sends one release per sequence number in one write, and returns each answer's error code.
    func codes(_ raw: RawConnection, _ sequences: [UInt64]) async throws -> [UInt64: ErrorCode?] {
        var b = ByteBuffer()
        for (i, sequence) in sequences.enumerated() { b.writeRequest(release(sequence), requestID: RequestID(UInt32(100 + i))) }
        try await raw.send(b)
        let replies = try await raw.nextReplies(sequences.count)
        var codes: [UInt64: ErrorCode?] = [:]
        for (i, sequence) in sequences.enumerated() {
            codes[sequence] = replies[UInt32(100 + i)].flatMap(errorCode)
        }
        return codes
    }

    /// §5: refused is a sequence at or below the newest one whose answer was forgotten; any other
    /// that is not remembered is applied, in whatever order it comes.
    @Test func sequenceTooOldRefusesOnlyWhatMayHaveBeenForgotten() async throws {
        try await withNode { node in
            let fresh = try await RawConnection(port: node.port)
            try await fresh.hello(client: 501)
            #expect(try await codes(fresh, [1000]) == [1000: .staleToken])
            #expect(try await codes(fresh, [999]) == [999: .staleToken], "a first 999 after 1000 is applied")
            await fresh.close()

            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 502)
            let sent: [UInt64] = [10, 20] + Array(100...355)
            let first = try await codes(raw, sent)
            #expect(first.values.allSatisfy { $0 == .staleToken }, "every one applied: \(Set(first.values.map { "\(String(describing: $0))" }))")
            // 258 answers, 256 kept: those of 10 and 20 are forgotten.
            #expect(try await codes(raw, [15]) == [15: .sequenceTooOld])
            #expect(try await codes(raw, [20]) == [20: .sequenceTooOld])
            #expect(try await codes(raw, [50]) == [50: .staleToken], "50 was never sent: it is applied")
            await raw.close()
        }
    }

    /// §5, "What a retry sees": a retry of the same request gets the first answer, a remembered error
    /// included, even after the state changed; a different request under a used sequence number is
    /// refused with SEQUENCE_REUSED and not applied (issue 19, item 2). Before, it got the first
    /// request's reply: a LOCK_ACQUIRE was answered with a JOB_ADD reply (opcode 0xA0).
    @Test func aRetryMustCarryTheSameRequest() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 503)
            try await raw.send(.command(SequenceNumber(1), .releaseLock(key: "r", token: FencingToken(1000))), id: 1)
            #expect(errorCode(try await raw.nextReply().reply) == .staleToken)
            try await raw.send(.command(SequenceNumber(2), .acquireLock(key: "r", owner: "raw", ttl: Milliseconds(60_000), wait: .zero)), id: 2)
            guard case .lockAcquired(.granted(let token, _, _)) = try await raw.nextReply().reply, token.rawValue != 1000 else {
                Issue.record("the premise failed: the lock was not granted, or granted with token 1000")
                return
            }
            // Sequence 1 again, unchanged: the remembered STALE_TOKEN, though the state changed.
            try await raw.send(.command(SequenceNumber(1), .releaseLock(key: "r", token: FencingToken(1000))), id: 3)
            #expect(errorCode(try await raw.nextReply().reply) == .staleToken)
            // Sequence 1 with the holder's token is another request: refused, and nothing released.
            try await raw.send(.command(SequenceNumber(1), .releaseLock(key: "r", token: token)), id: 4)
            #expect(errorCode(try await raw.nextReply().reply) == .sequenceReused)
            try await raw.send(.query(.getLock(key: "r")), id: 5)
            guard case .lock(let info?) = try await raw.nextReply().reply else {
                Issue.record("the lock was released by a request under a used sequence number")
                return
            }
            #expect(info.token == token)

            // The issue's case: JOB_ADD with sequence 5, then LOCK_ACQUIRE with sequence 5.
            try await raw.send(.command(SequenceNumber(5), .addJob(JobSpec(type: "t"))), id: 6)
            let added = try await raw.nextReply()
            guard case .jobAdded = added.reply else {
                Issue.record("the premise failed: the job was not added: \(added.reply)")
                return
            }
            var acquire = ByteBuffer()
            acquire.writeRequest(.command(SequenceNumber(5), .acquireLock(key: "q", owner: "raw", ttl: Milliseconds(1000), wait: .zero)), requestID: RequestID(7))
            try await raw.send(acquire)
            let refused = try await raw.nextReply()
            #expect(refused.id == 7)
            #expect(errorCode(refused.reply) == .sequenceReused, "\(refused.reply)")
            try await raw.send(.query(.getLock(key: "q")), id: 8)
            #expect(try await raw.nextReply().reply == .lock(nil), "the acquire under a used sequence was applied")
            // The JOB_ADD's own retry still gets its answer.
            try await raw.send(.command(SequenceNumber(5), .addJob(JobSpec(type: "t"))), id: 9)
            #expect(try await raw.nextReply().reply == added.reply)
            // A new sequence number is a new request.
            try await raw.send(.command(SequenceNumber(3), .releaseLock(key: "r", token: token)), id: 10)
            #expect(try await raw.nextReply().reply == .lockReleased)
            await raw.close()
        }
    }

    /// §1: every request gets exactly one answer. A waiting acquire retried on a second connection
    /// (same client, same sequence) was answered only there; the first request never was, even
    /// after its wait (issue 19, item 3). Both get the grant now.
    @Test func aWaitRetriedOnASecondConnectionAnswersBoth() async throws {
        try await withNode { node in
            let holder = try await RawConnection(port: node.port)
            try await holder.hello(client: 601)
            let acquire = Command.acquireLock(key: "w", owner: "raw", ttl: Milliseconds(60_000), wait: Milliseconds(30_000))
            try await holder.send(.command(SequenceNumber(1), acquire), id: 1)
            guard case .lockAcquired(.granted(let held, _, _)) = try await holder.nextReply().reply else {
                Issue.record("the premise failed: the holder was not granted the lock")
                return
            }
            let first = try await RawConnection(port: node.port)
            try await first.hello(client: 600)
            try await first.send(.command(SequenceNumber(1), acquire), id: 11)
            let second = try await RawConnection(port: node.port)
            try await second.hello(client: 600)
            try await second.send(.command(SequenceNumber(1), acquire), id: 21)
            // Both wait now; a ping on each shows their commands were taken in (answers come in order).
            try await first.send(.ping, id: 12)
            #expect(try await first.nextReply().id == 12)
            try await second.send(.ping, id: 22)
            #expect(try await second.nextReply().id == 22)

            try await holder.send(.command(SequenceNumber(2), .releaseLock(key: "w", token: held)), id: 2)
            #expect(try await holder.nextReply().reply == .lockReleased)
            let retried = try await second.nextReply()
            guard retried.id == 21, case .lockAcquired(.granted(let token, _, _)) = retried.reply else {
                Issue.record("the retry was answered \(retried)")
                return
            }
            // The first request gets the same grant, before anything sent after it.
            try await first.send(.ping, id: 13)
            let original = try await first.nextReply()
            #expect(original.id == 11, "the first request was not answered; next came \(original)")
            if case .lockAcquired(.granted(let again, _, _)) = original.reply { #expect(again == token) }
            for raw in [holder, first, second] { await raw.close() }
        }
    }
}
