import BatonClient
import BatonProtocol
import BatonTestSupport
import NIOConcurrencyHelpers
import Testing

@Suite(.heavy, .timeLimit(.minutes(1))) struct IntegrationTests {
    @Test func everyLockOperation() async throws {
        try await withNode { node in
            let a = node.client("a")
            let b = node.client("b")
            guard case .granted(let token, let expiresAt, _) = try await a.acquireLock("jobs/report", ttl: .seconds(5)) else {
                Issue.record("not granted")
                return
            }
            guard case .busy(let holder, let holderExpiry) = try await b.acquireLock("jobs/report", ttl: .seconds(5)) else {
                Issue.record("not busy")
                return
            }
            #expect(holder == "a" && holderExpiry == expiresAt)
            let renewal = try await a.renewLock("jobs/report", token: token, ttl: .seconds(10))
            let renewed = renewal.expiresAt
            #expect(renewed > expiresAt && renewal.leaseLeft > 9_000 && renewal.leaseLeft <= 10_000)
            let info = try #require(try await b.getLock("jobs/report"))
            #expect(info.owner == "a" && info.token == token && info.clientID == a.clientID && info.expiresAt == renewed)
            #expect(try await b.listLocks(prefix: "jobs/").map(\.key) == ["jobs/report"])
            #expect(try await b.listLocks(prefix: "other/").isEmpty)
            try await a.releaseLock("jobs/report", token: token)
            #expect(try await b.getLock("jobs/report") == nil)
            guard case .granted(let next, _, _) = try await b.acquireLock("jobs/report", ttl: .seconds(5)) else {
                Issue.record("not granted after release")
                return
            }
            #expect(next > token)
            _ = try await a.serverTime()
            await a.shutdown()
            await b.shutdown()
        }
    }

    @Test func everyJobOperation() async throws {
        try await withNode { node in
            let c = node.client("jobs")
            let (id, created) = try await c.addJob(JobSpec(type: "img", payload: [1], uniqueKey: "cat.png"))
            #expect(created)
            let dup = try await c.addJob(JobSpec(type: "img", payload: [1], uniqueKey: "cat.png"))
            #expect(dup.id == id && !dup.created)
            #expect(try await c.getJob(id).state == .queued)
            let job = try #require(try await c.claimJob(types: ["img"]))
            #expect(job.id == id && job.payload == [1])
            #expect(try await c.runningJobs(type: "img") == 1)
            _ = try await c.extendJob(id, token: job.token)
            try await c.abortJob(id, token: job.token)
            let again = try await c.claimJob(id: id)
            #expect(again.attempt == 1)
            let failed = try await c.failJob(id, token: again.token, error: "oops")
            #expect(failed.state == .queued)
            let (other, _) = try await c.addJob(JobSpec(type: "img", maxAttempts: 1))
            let o = try await c.claimJob(id: other)
            #expect(try await c.failJob(other, token: o.token, error: "bad").state == .dead)
            try await c.requeueJob(other)
            let o2 = try await c.claimJob(id: other)
            try await c.completeJob(other, token: o2.token, result: [7])
            #expect(try await c.getJob(other).result == [7])
            let page = try await c.listJobs(JobFilter(type: "img"))
            #expect(page.jobs.map(\.id) == [id, other])
            try await c.deleteJob(id)
            #expect(try await c.listJobs(JobFilter(state: .queued)).jobs.isEmpty)
            #expect(try await c.claimJob(types: ["img"], wait: .milliseconds(200)) == nil)
            await c.shutdown()
        }
    }

    @Test func contendersGetTheLockOneAtATimeInFIFOOrder() async throws {
        try await withNode { node in
            let holder = node.client("holder")
            guard case .granted(let first, _, _) = try await holder.acquireLock("hot", ttl: .seconds(30)) else { Issue.record("the premise failed: the lock was not granted"); return }
            let order = NIOLockedValueBox<[Int]>([])
            let inside = NIOLockedValueBox(0)
            let count = 8
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<count {
                    // Queue the contenders one after another so their order in line is known.
                    let client = node.client("c\(i)")
                    group.addTask {
                        try await client.withLock("hot", ttl: .seconds(5), wait: .seconds(30), owner: "c\(i)") { lease in
                            let n = inside.withLockedValue { $0 += 1; return $0 }
                            #expect(n == 1, "two holders at once")
                            order.withLockedValue { $0.append(i) }
                            try await Task.sleep(for: .milliseconds(20))
                            inside.withLockedValue { $0 -= 1 }
                            _ = lease
                        }
                        await client.shutdown()
                    }
                    try await holder.waitForWaiters(i + 1, on: "hot")
                }
                try await holder.releaseLock("hot", token: first)
                try await group.waitForAll()
            }
            #expect(order.withLockedValue { $0 } == Array(0..<count))
            await holder.shutdown()
        }
    }

    /// A full queue refuses adds with QUOTA_EXCEEDED, which the client does not retry; the connection
    /// carries on, and completing a job makes room.
    @Test func aFullQueueRefusesAddsUntilAJobIsDone() async throws {
        try await withNode({ $0.limits.maxJobs = 2 }) { node in
            let c = node.client()
            _ = try await c.addJob(JobSpec(type: "mail"))
            _ = try await c.addJob(JobSpec(type: "mail"))
            await expectServerError(.quotaExceeded) { _ = try await c.addJob(JobSpec(type: "mail")) }
            let job = try #require(try await c.claimJob(types: ["mail"]))
            try await c.completeJob(job.id, token: job.token)
            #expect(try await c.addJob(JobSpec(type: "mail")).created)
            await c.shutdown()
        }
    }

    @Test func workerThatStopsRenewingLosesItsJob() async throws {
        try await withNode { node in
            let stalled = node.client("stalled")
            let healthy = node.client("healthy")
            let (id, _) = try await stalled.addJob(JobSpec(type: "scan", timeout: 1000, backoff: 100))
            let first = try #require(try await stalled.claimJob(types: ["scan"]))
            // The stalled worker never extends. The job comes back after its lease and backoff; the
            // healthy worker extends its claim at once, so a busy machine cannot end it meanwhile.
            let second = try #require(try await healthy.claimJob(types: ["scan"], wait: .seconds(30)))
            _ = try await healthy.extendJob(id, token: second.token, ttl: .seconds(60))
            #expect(second.id == id && second.attempt == 2 && second.token > first.token)
            await expectServerError(.claimLost) { try await stalled.completeJob(id, token: first.token) }
            await expectServerError(.claimLost) { try await stalled.extendJob(id, token: first.token) }
            try await healthy.completeJob(id, token: second.token)
            #expect(try await healthy.getJob(id).state == .completed)
            await stalled.shutdown()
            await healthy.shutdown()
        }
    }

    @Test func withLockRenewsPastItsTTL() async throws {
        try await withNode { node in
            let c = node.client()
            // Long enough that a busy machine (tests run two to a core) cannot miss a renewal window.
            let token = try await c.withLock("long", ttl: .seconds(2)) { lease in
                try await Task.sleep(for: .milliseconds(4500))
                return lease.token
            }
            #expect(token.rawValue > 0)
            #expect(try await c.getLock("long") == nil)  // released on return
            await c.shutdown()
        }
    }

    @Test func withLockCancelsTheBodyWhenTheLeaseIsLost() async throws {
        let node = try await TestNode.start()
        let c = node.client(retryTimeout: .milliseconds(100))
        let bodyCancelled = NIOLockedValueBox(false)
        await #expect(throws: BatonClientError.self) {
            try await c.withLock("doomed", ttl: .milliseconds(400)) { _ in
                // The node goes away; renewals cannot succeed. (Stopped outside the body's task: on a
                // loaded machine the stop can outlast the lease, and its cancellation is the subject.)
                try await Task.detached { try await node.stop() }.value
                do {
                    try await Task.sleep(for: .seconds(10))
                } catch {
                    bodyCancelled.withLockedValue { $0 = true }
                    throw error
                }
            }
        }
        #expect(bodyCancelled.withLockedValue { $0 })
        await c.shutdown()
    }

    /// JOB_ADD_BATCH and JOB_CLAIM_BATCH through the client (issue 38): all or nothing, each claim
    /// its own; a worker cancelled with claims in hand leaves none running.
    @Test func batchesAddAllOrNothingAndClaimSeveral() async throws {
        try await withNode { node in
            let c = node.client("batches")
            let added = try await c.addJobs((0..<50).map { JobSpec(type: "b", payload: [UInt8($0)]) })
            #expect(added.count == 50 && added.allSatisfy(\.created))
            do {
                try await c.addJobs([JobSpec(type: "b"), JobSpec(type: "b", timeout: 1)])
                Issue.record("a batch with a bad job was added")
            } catch BatonClientError.server(let e) {
                #expect(e.code == .invalidArgument && e.message.contains("job 1 of the batch"), "\(e)")
            }
            #expect(try await c.listJobs(JobFilter(type: "b")).jobs.count == 50, "a job of a refused batch was added")
            let claimed = try await c.claimJobs(types: ["b"], max: 20)
            #expect(claimed.map(\.id) == Array(added.prefix(20).map(\.id)))
            #expect(Set(claimed.map(\.token)).count == 20)
            for job in claimed { try await c.completeJob(job.id, token: job.token) }
            #expect(try await c.claimJobs(types: ["b"], max: 1000).count == 30)
            #expect(try await c.claimJobs(types: ["b"], max: 5).isEmpty)

            // A worker that holds claims when it is cancelled: none is left running.
            _ = try await c.addJobs((0..<12).map { JobSpec(type: "slow", payload: [UInt8($0)]) })
            let started = NIOLockedValueBox(0)
            let worker = JobWorker(client: node.client("worker"), types: ["slow"], concurrency: 4) { _ in
                started.withLockedValue { $0 += 1 }
                try await Task.sleep(for: .seconds(60))  // until cancelled
                return []
            }
            let run = Task { try await worker.run() }
            try await eventually("the worker runs four jobs") { started.withLockedValue { $0 } == 4 }
            run.cancel()
            _ = try? await run.value
            #expect(try await c.listJobs(JobFilter(type: "slow", state: .running)).jobs.isEmpty, "a claim was left running")
            #expect(started.withLockedValue { $0 } == 4, "the worker started more than its concurrency")
            await c.shutdown()
            await worker.client.shutdown()
        }
    }

    /// JOB_COMPLETE_BATCH through the client (issue 38): each completion on its own, then the claims,
    /// in one request.
    @Test func aCompleteBatchCompletesEachAndClaimsTheNext() async throws {
        try await withNode { node in
            let c = node.client("completions")
            let added = try await c.addJobs((0..<10).map { JobSpec(type: "c", payload: [UInt8($0)]) })
            let claimed = try await c.claimJobs(types: ["c"], max: 4)
            try #require(claimed.count == 4)
            var completions = claimed.map { JobCompletion(id: $0.id, token: $0.token, result: $0.payload) }
            completions[1].token = FencingToken(completions[1].token.rawValue + 1000)  // not its claim
            let (outcomes, next) = try await c.completeJobs(completions, thenClaim: 3, types: ["c"])
            #expect(outcomes == [nil, .claimLost, nil, nil])
            #expect(next.map(\.id) == added[4..<7].map(\.id))
            #expect(try await c.getJob(claimed[0].id).result == claimed[0].payload)
            #expect(try await c.getJob(claimed[1].id).state == .running, "the lost completion changed its job")
            let (none, rest) = try await c.completeJobs([], thenClaim: 1000, types: ["c"])
            #expect(none.isEmpty && rest.count == 3)
            do {
                _ = try await c.completeJobs([])
                Issue.record("a batch with nothing to do was answered")
            } catch BatonClientError.server(let e) {
                #expect(e.code == .invalidArgument, "\(e)")
            }
            await c.shutdown()
        }
    }

    @Test func jobWorkerCompletesAndFailsJobs() async throws {
        try await withNode { node in
            let c = node.client("producer")
            var ids: [JobID] = []
            for i in 0..<20 {
                ids.append(try await c.addJob(JobSpec(type: "thumb", payload: [UInt8(i)], maxAttempts: 2, backoff: 100)).id)
            }
            let workerClient = node.client("worker")
            let worker = JobWorker(client: workerClient, types: ["thumb"], concurrency: 4) { job in
                if job.payload == [13] { throw CancellationError() }  // an unlucky job
                return job.payload + job.payload
            }
            let run = Task { try await worker.run() }
            try await eventually("every job is completed or dead") {
                try await c.listJobs(JobFilter(type: "thumb")).jobs.allSatisfy { $0.state == .completed || $0.state == .dead }
            }
            run.cancel()
            let jobs = try await c.listJobs(JobFilter(type: "thumb")).jobs
            let completedCount = jobs.filter { $0.state == .completed }.count
            #expect(completedCount == 19)
            let dead = try #require(jobs.first { $0.state == .dead })
            #expect(dead.payload == [13] && dead.attempts == 2)
            #expect(jobs.first { $0.payload == [4] }?.result == [4, 4])
            await c.shutdown()
            await workerClient.shutdown()
        }
    }

    @Test func periodicTaskRunsOnOneReplicaAtATimeWithoutOverlap() async throws {
        try await withNode { node in
            let runs = NIOLockedValueBox<[(replica: Int, start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([])
            let clients = (0..<3).map { node.client("replica-\($0)") }
            let tasks = clients.enumerated().map { i, client in
                Task {
                    try await client.runPeriodic("sweep", every: .milliseconds(200), ttl: .seconds(2)) {
                        let start = ContinuousClock.now
                        try await Task.sleep(for: .milliseconds(30))
                        runs.withLockedValue { $0.append((i, start, ContinuousClock.now)) }
                    }
                }
            }
            try await eventually("five runs", every: .milliseconds(20)) { runs.withLockedValue { $0.count } >= 5 }
            for t in tasks { t.cancel() }
            for t in tasks { _ = try? await t.value }
            let all = runs.withLockedValue { $0 }.sorted { $0.start < $1.start }
            #expect(all.count >= 5, "\(all.count) runs")
            #expect(Set(all.map(\.replica)).count == 1, "the holder kept the schedule")
            for (a, b) in zip(all, all.dropFirst()) { #expect(a.end <= b.start, "runs overlapped") }
            for c in clients { await c.shutdown() }
        }
    }

    @Test func periodicTaskMovesToAnotherReplicaWhenTheHolderStops() async throws {
        try await withNode { node in
            let runs = NIOLockedValueBox<[Int]>([])
            let clients = (0..<2).map { node.client("replica-\($0)") }
            let first = Task {
                try await clients[0].runPeriodic("handover", every: .milliseconds(100), ttl: .milliseconds(500)) {
                    runs.withLockedValue { $0.append(0) }
                }
            }
            // Each step waits for what it needs, not for a time.
            func waitFor(_ replica: Int) async throws {
                try await eventually("replica \(replica) runs", every: .milliseconds(20)) { runs.withLockedValue { $0.contains(replica) } }
            }
            try await waitFor(0)
            let second = Task {
                try await clients[1].runPeriodic("handover", every: .milliseconds(100), ttl: .milliseconds(500)) {
                    runs.withLockedValue { $0.append(1) }
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            first.cancel()
            _ = try? await first.value
            try await waitFor(1)
            second.cancel()
            _ = try? await second.value
            let seen = runs.withLockedValue { $0 }
            #expect(seen.first == 0 && seen.last == 1, "\(seen)")
            for c in clients { await c.shutdown() }
        }
    }
}
