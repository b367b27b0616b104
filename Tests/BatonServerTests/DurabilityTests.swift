import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@testable import BatonServer

@Suite(.heavy, .timeLimit(.minutes(1))) struct DurabilityTests {
    /// A claim that has waited longer than the client's retry timeout when its node goes away is
    /// still sent again: the retry window counts the wait. (Before, it failed at once, and on a
    /// cluster its wait stayed in the new leader's log and took the next job for nobody.)
    @Test func aLongWaitIsRetriedWhenItsNodeGoesAway() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await TestNode.start { $0.dataDirectory = dir }
        let port = first.port
        let worker = first.client("worker", retryTimeout: .milliseconds(500))
        let claim = Task { try await worker.claimJob(types: ["t"], wait: .seconds(20)) }
        try await Task.sleep(for: .seconds(1))  // past the retry timeout, still waiting
        try await first.stop()
        let second = try await TestNode.start {
            $0.dataDirectory = dir
            $0.port = port
        }
        let adder = second.client("adder")
        _ = try await adder.addJob(JobSpec(type: "t", payload: [7]))
        let result = await claim.result
        await worker.shutdown()
        await adder.shutdown()
        try await second.stop()
        guard case .success(let job?) = result else {
            Issue.record("the claim did not get the job: \(result)")
            return
        }
        #expect(job.payload == [7])
    }

    /// PROTOCOL.md §5: a single node that restarts takes office again and holds the waits in its
    /// log, including one it answered SHUTTING_DOWN when it stopped; the client that sends it again
    /// (same sequence) within the grace gets the grant once the lock is freed (issue 19, item 11).
    @Test func aWaitAnsweredAtShutdownComesBackAfterARestart() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await TestNode.start { $0.dataDirectory = dir }
        let port = first.port
        let acquire = Command.acquireLock(key: "back", owner: "raw", ttl: Milliseconds(60_000), wait: Milliseconds(30_000))
        let holder = try await RawConnection(port: port)
        try await holder.hello(client: 801)
        try await holder.send(.command(SequenceNumber(1), acquire), id: 1)
        guard case .lockAcquired(.granted(let token, _, _)) = try await holder.nextReply().reply else {
            Issue.record("the premise failed: the holder was not granted the lock")
            try await first.stop()
            return
        }
        let waiter = try await RawConnection(port: port)
        try await waiter.hello(client: 802)
        try await waiter.send(.command(SequenceNumber(1), acquire), id: 1)
        try await waiter.send(.ping, id: 2)
        #expect(try await waiter.nextReply().id == 2)
        try await first.stop()
        let down = try await waiter.nextReply()
        #expect(down.id == 1 && errorCode(down.reply) == .shuttingDown, "\(down)")
        await holder.close()
        await waiter.close()

        let second = try await TestNode.start {
            $0.dataDirectory = dir
            $0.port = port
        }
        let again = try await RawConnection(port: port)
        try await again.hello(client: 802)
        try await again.send(.command(SequenceNumber(1), acquire), id: 7)
        try await again.send(.ping, id: 8)
        #expect(try await again.nextReply().id == 8, "the wait is held, not answered at once")
        let holderAgain = try await RawConnection(port: port)
        try await holderAgain.hello(client: 801)
        try await holderAgain.send(.command(SequenceNumber(2), .releaseLock(key: "back", token: token)), id: 2)
        #expect(try await holderAgain.nextReply().reply == .lockReleased)
        let granted = try await again.nextReply()
        #expect(granted.id == 7, "\(granted)")
        if case .lockAcquired(.granted(let next, _, _)) = granted.reply {
            #expect(next > token)
        } else {
            Issue.record("the wait that came back was answered \(granted.reply)")
        }
        await again.close()
        await holderAgain.close()
        try await second.stop()
    }

    @Test func stateSurvivesARestart() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await TestNode.start { $0.dataDirectory = dir }
        let port = first.port
        let c = first.client()
        guard case .granted(let token, let expiresAt, _) = try await c.acquireLock("held", ttl: .seconds(60)) else { Issue.record("the premise failed: the lock was not granted"); return }
        let (queued, _) = try await c.addJob(JobSpec(type: "t", payload: [1], uniqueKey: "u1"))
        let (done, _) = try await c.addJob(JobSpec(type: "t", payload: [2]))
        let job = try await c.claimJob(id: done)
        try await c.completeJob(done, token: job.token, result: [42])
        await c.shutdown()
        try await first.stop()

        let second = try await TestNode.start {
            $0.dataDirectory = dir
            $0.port = port
        }
        let d = second.client()
        let lock = try #require(try await d.getLock("held"))
        #expect(lock.token == token && lock.expiresAt == expiresAt)
        #expect(try await d.getJob(queued).state == .queued)
        #expect(try await d.getJob(done).result == [42])
        #expect(try await d.addJob(JobSpec(type: "t", uniqueKey: "u1")).id == queued)  // the unique index came back too
        guard case .granted(let next, _, _) = try await d.acquireLock("other", ttl: .seconds(1)) else { Issue.record("the premise failed: the lock was not granted"); return }
        #expect(next > job.token)  // tokens keep growing across the restart
        await d.shutdown()
        try await second.stop()
    }

    /// A lease keeps, after a restart, the time it had left when the node went down.
    @Test func leaseTimeStandsStillWhileTheNodeIsDown() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await TestNode.start { $0.dataDirectory = dir }
        let port = first.port
        let c = first.client()
        // A lease long enough to outlast the stop on a loaded machine, and a downtime longer still.
        guard case .granted(let token, _, _) = try await c.acquireLock("k", ttl: .milliseconds(4000)) else { Issue.record("the premise failed: the lock was not granted"); return }
        await c.shutdown()
        try await first.stop()
        try await Task.sleep(for: .milliseconds(4500))  // longer than the lease: it would have ended by wall clock

        let second = try await TestNode.start {
            $0.dataDirectory = dir
            $0.port = port
        }
        let d = second.client()
        #expect(try await d.getLock("k")?.token == token, "the lease ended while the node was down")
        // But it does end, once the time it had left has run (the suite's minute guards a hang).
        try await eventually("the lease ends once its time has run") { try await d.getLock("k") == nil }
        await d.shutdown()
        try await second.stop()
    }

    @Test func snapshotsBoundTheLogAndRecoveryUsesThem() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let configure: (inout NodeConfiguration) -> Void = {
            $0.dataDirectory = dir
            $0.snapshotEveryEntries = 100
            $0.segmentSizeBytes = 4096
        }
        let first = try await TestNode.start(configure)
        let port = first.port
        let c = first.client()
        var ids: [JobID] = []
        for i in 0..<500 { ids.append(try await c.addJob(JobSpec(type: "t", payload: [UInt8(i % 256)])).id) }
        // The last snapshot due is written: fewer than 100 entries applied since the newest one.
        let applied = try await c.nodeStatus().appliedIndex
        try await waitForSnapshot(in: dir) { $0 + 100 > applied }
        await c.shutdown()
        try await first.stop()
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/snapshots").filter { $0.hasSuffix(".snap") }
        let segments = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/wal")
        #expect(snapshots.count == 2)  // the newest two are kept
        #expect(segments.count <= 3, "\(segments)")  // covered segments were deleted

        let second = try await TestNode.start {
            configure(&$0)
            $0.port = port
        }
        let d = second.client()
        let all = try await d.listJobs(JobFilter(limit: 1000)).jobs
        #expect(all.map(\.id) == ids)
        await d.shutdown()
        try await second.stop()
    }

    /// Large payloads reach the size trigger long before the entry count: the log is still bounded.
    @Test func aSnapshotIsTakenAfterEnoughBytesOfLog() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try await TestNode.start {
            $0.dataDirectory = dir
            $0.snapshotEveryEntries = 1_000_000
            $0.snapshotEveryBytes = 65536
        }
        let c = node.client()
        for i in 0..<40 { _ = try await c.addJob(JobSpec(type: "t", payload: [UInt8](repeating: UInt8(i), count: 4096))) }
        // 40 entries of 4 KiB: at least one snapshot after 64 KiB of log.
        try await waitForSnapshot(in: dir) { _ in true }
        await c.shutdown()
        try await node.stop()
    }

    @Test func corruptionInTheMiddleOfTheLogStopsStartUpWithAClearMessage() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await TestNode.start { $0.dataDirectory = dir }
        let c = first.client()
        for _ in 0..<20 { _ = try await c.addJob(JobSpec(type: "t")) }
        await c.shutdown()
        try await first.stop()
        let segment = "\(dir)/wal/" + (try FileManager.default.contentsOfDirectory(atPath: "\(dir)/wal").first!)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes[30] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: segment))
        do {
            _ = try await TestNode.start { $0.dataDirectory = dir }
            Issue.record("a node started on a corrupt log")
        } catch {
            #expect("\(error)".contains("corrupt record"), "\(error)")
        }
    }
}

/// Waits until the node has written a snapshot (a `.snap` file; it is renamed into place whole) whose
/// index satisfies `covers`, and records a failure if none comes within a minute.
func waitForSnapshot(in dataDirectory: String, _ covers: (UInt64) -> Bool) async throws {
    try await eventually("a snapshot as expected is written in \(dataDirectory)", every: .milliseconds(10)) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dataDirectory)/snapshots")) ?? []
        let indexes = names.filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }
            .compactMap { UInt64($0.dropFirst("snapshot-".count).dropLast(".snap".count), radix: 16) }
        return indexes.max().map(covers) ?? false
    }
}
