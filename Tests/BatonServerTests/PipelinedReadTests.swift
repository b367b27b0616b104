import BatonProtocol
import BatonTestSupport
import NIOCore
import Testing

/// PROTOCOL.md §1: requests on one connection are applied in the order they arrive, so a query sent
/// right behind a command on the same connection sees it, and its reply comes after the command's
/// (issue 35, item 1). Before, the read index (the commit index when the query arrived) could stand
/// before the command still being committed: LOCK_GET answered "not held" (`00 00 00 07 93 00 00 00
/// 00 03 00`) ahead of the grant, 150 times of 150, and JOB_LIST an empty page ahead of JOB_ADD.
@Suite(.timeLimit(.minutes(1))) struct PipelinedReadTests {
    @Test func aLockQueryInTheSameWriteSeesTheAcquireBeforeIt() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 351)
            for pair in 0..<150 {
                let key = "pipelined-\(pair)"
                let acquire = UInt32(2 + 2 * pair), get = acquire + 1
                var bytes = ByteBuffer()
                bytes.writeRequest(
                    .command(SequenceNumber(UInt64(pair + 1)), .acquireLock(key: key, owner: "raw", ttl: Milliseconds(10_000), wait: .zero)),
                    requestID: RequestID(acquire))
                bytes.writeRequest(.query(.getLock(key: key)), requestID: RequestID(get))
                try await raw.send(bytes)  // one write: both requests reach the node together

                let first = try await raw.nextReply()
                let second = try await raw.nextReply()
                #expect([first.id, second.id] == [acquire, get], "pair \(pair): replies in the order sent")
                let granted = try #require(Self.token(first.reply), "pair \(pair): \(first.reply)")
                guard case .lock(let info) = second.reply else {
                    Issue.record("pair \(pair): LOCK_GET answered \(second.reply)")
                    continue
                }
                let held = try #require(info, "pair \(pair): LOCK_GET says not held right after the grant")
                #expect(held.token == granted && held.owner == "raw")
            }
            await raw.close()
        }
    }

    @Test func aJobListInTheSameWriteSeesTheJobAddedBeforeIt() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 352)
            for round in 0..<50 {
                let type = "pipelined-\(round)"
                var bytes = ByteBuffer()
                bytes.writeRequest(.command(SequenceNumber(UInt64(round + 1)), .addJob(JobSpec(type: type))), requestID: RequestID(10))
                bytes.writeRequest(.query(.listJobs(JobFilter(type: type))), requestID: RequestID(11))
                try await raw.send(bytes)

                let first = try await raw.nextReply()
                let second = try await raw.nextReply()
                #expect([first.id, second.id] == [10, 11], "round \(round): replies in the order sent")
                guard case .jobAdded(let id, created: true) = first.reply else {
                    Issue.record("round \(round): JOB_ADD answered \(first.reply)")
                    continue
                }
                guard case .jobs(let jobs, _) = second.reply else {
                    Issue.record("round \(round): JOB_LIST answered \(second.reply)")
                    continue
                }
                #expect(jobs.map(\.id) == [id], "round \(round): the list shows the job added before it")
            }
            await raw.close()
        }
    }

    static func token(_ reply: Reply) -> FencingToken? {
        if case .lockAcquired(.granted(let token, _, _)) = reply { return token }
        return nil
    }
}
