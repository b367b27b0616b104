import BatonProtocol
import Testing

@testable import BatonCore

@Suite struct JobTests {
    @Test func addClaimComplete() {
        var h = Harness()
        let id = h.add(JobSpec(type: "img", payload: [1, 2, 3]))
        let job = h.claim(["img"])!
        #expect(job.id == id && job.payload == [1, 2, 3] && job.attempt == 1 && job.maxAttempts == 5)
        #expect(job.leaseExpiresAt == h.time.adding(60_000))
        #expect(h.query(.jobRunning(type: "img")) == .jobRunning(count: 1))
        #expect(h.run(.completeJob(id, token: job.token, result: [9])) == .jobCompleted)
        #expect(h.job(id)?.state == .completed && h.job(id)?.result == [9])
        #expect(h.query(.jobRunning(type: "img")) == .jobRunning(count: 0))
        #expect(errorCode(h.run(.completeJob(id, token: job.token, result: []))) == .claimLost)
        #expect(h.claim(["img"]) == nil)
    }

    @Test func priorityThenAge() {
        var h = Harness()
        let low = h.add(JobSpec(type: "t", priority: 0))
        h.advance(1)
        let high1 = h.add(JobSpec(type: "t", priority: 5))
        h.advance(1)
        let high2 = h.add(JobSpec(type: "t", priority: 5))
        let other = h.add(JobSpec(type: "u", priority: 9))
        #expect(h.claim(["t"])?.id == high1)
        #expect(h.claim(["t", "u"])?.id == other)
        #expect(h.claim(["t"])?.id == high2)
        #expect(h.claim(["t"])?.id == low)
    }

    @Test func uniqueKeyDeduplicatesUnfinishedJobs() {
        var h = Harness()
        guard case .jobAdded(let id, true) = h.run(.addJob(JobSpec(type: "t", uniqueKey: "img-1"))) else { Issue.record("not created"); return }
        #expect(h.run(.addJob(JobSpec(type: "t", uniqueKey: "img-1"))) == .jobAdded(id, created: false))
        guard case .jobAdded(_, true) = h.run(.addJob(JobSpec(type: "other", uniqueKey: "img-1"))) else { Issue.record("type not part of key"); return }
        let job = h.claim(["t"])!
        #expect(h.run(.addJob(JobSpec(type: "t", uniqueKey: "img-1"))) == .jobAdded(id, created: false))
        #expect(h.run(.completeJob(id, token: job.token, result: [])) == .jobCompleted)
        guard case .jobAdded(let again, true) = h.run(.addJob(JobSpec(type: "t", uniqueKey: "img-1"))) else { Issue.record("finished job still blocks"); return }
        #expect(again != id)
    }

    @Test func delayedJobWaitsForItsTime() {
        var h = Harness()
        let id = h.add(JobSpec(type: "t", delay: 500))
        #expect(h.claim(["t"]) == nil)
        h.advance(499)
        #expect(h.claim(["t"]) == nil)
        h.advance(1)
        #expect(h.claim(["t"])?.id == id)
    }

    @Test func waitingClaimIsServedByAnAdd() {
        var h = Harness()
        #expect(h.claim(["t"], client: ClientID(2), wait: 5000) == nil)
        #expect(h.completions.isEmpty)
        let id = h.add(JobSpec(type: "t"))
        guard case .jobClaimed(let job?) = h.completions.first?.reply else { Issue.record("waiter not served"); return }
        #expect(job.id == id && h.completions[0].clientID == ClientID(2))
    }

    @Test func waitingClaimTimesOutEmpty() {
        var h = Harness()
        #expect(h.claim(["t"], wait: 300) == nil)
        h.advance(300)
        #expect(h.completions.first?.reply == .jobClaimed(nil))
        _ = h.add(JobSpec(type: "t"))
        #expect(h.completions.count == 1)
    }

    @Test func claimByID() {
        var h = Harness()
        let a = h.add(JobSpec(type: "t"))
        let b = h.add(JobSpec(type: "t", delay: 10_000))
        guard case .jobClaimedByID(let job) = h.run(.claimJobByID(b, worker: "w")) else { Issue.record("not claimed"); return }
        #expect(job.id == b)
        #expect(errorCode(h.run(.claimJobByID(b, worker: "w"))) == .invalidState)
        #expect(errorCode(h.run(.claimJobByID(JobID(999), worker: "w"))) == .jobNotFound)
        #expect(h.claim(["t"])?.id == a)
        #expect(h.claim(["t"]) == nil)
    }

    @Test func failRetriesWithBackoffThenDies() {
        var h = Harness()
        let id = h.add(JobSpec(type: "t", maxAttempts: 3, backoff: 1000))
        var delays: [UInt64] = []
        for attempt in 1...3 {
            guard let job = h.claim(["t"]) else { Issue.record("attempt \(attempt) not claimable"); return }
            #expect(job.attempt == UInt16(attempt))
            guard case .jobFailed(let state, let retryAt) = h.run(.failJob(id, token: job.token, error: "boom \(attempt)")) else {
                Issue.record("fail refused")
                return
            }
            if attempt < 3 {
                #expect(state == .queued)
                delays.append(retryAt.milliseconds - h.time.milliseconds)
                #expect(h.claim(["t"]) == nil)
                h.advance(retryAt.milliseconds - h.time.milliseconds)
            } else {
                #expect(state == .dead && retryAt == .zero)
            }
        }
        // Exponential: 1 s then 2 s, each plus at most 25 % jitter.
        #expect((1000...1250).contains(delays[0]) && (2000...2500).contains(delays[1]))
        #expect(h.job(id)?.state == .dead && h.job(id)?.lastError == "boom 3")
        #expect(h.run(.requeueJob(id)) == .jobRequeued)
        #expect(h.claim(["t"])?.attempt == 1)
    }

    @Test func abortDoesNotCountAnAttempt() {
        var h = Harness()
        let id = h.add(JobSpec(type: "t", maxAttempts: 1))
        let job = h.claim(["t"])!
        #expect(h.run(.abortJob(id, token: job.token)) == .jobAborted)
        let again = h.claim(["t"])!
        #expect(again.attempt == 1 && again.token > job.token)
        #expect(errorCode(h.run(.extendJob(id, token: job.token, ttl: 0))) == .claimLost)
    }

    @Test func expiredLeaseRequeuesAndLateWorkerIsRefused() {
        var h = Harness()
        let id = h.add(JobSpec(type: "t", timeout: 1000, backoff: 100))
        let first = h.claim(["t"])!
        h.advance(500)
        #expect(h.run(.extendJob(id, token: first.token, ttl: 0)) == .jobExtended(leaseExpiresAt: h.time.adding(1000), leaseLeft: 1000))
        h.advance(999)
        #expect(h.job(id)?.state == .running)
        h.advance(1)
        #expect(h.job(id)?.state == .queued)
        #expect(h.job(id)?.lastError.hasPrefix("lease expired") == true)
        h.advance(200)
        let second = h.claim(["t"])!
        #expect(second.attempt == 2)
        for late in [Command.completeJob(id, token: first.token, result: []), .failJob(id, token: first.token, error: "x"),
                     .extendJob(id, token: first.token, ttl: 0), .abortJob(id, token: first.token)] {
            #expect(errorCode(h.run(late)) == .claimLost)
        }
        #expect(h.run(.completeJob(id, token: second.token, result: [])) == .jobCompleted)
    }

    @Test func deleteRequeueAndStates() {
        var h = Harness()
        let id = h.add(JobSpec(type: "t"))
        #expect(errorCode(h.run(.requeueJob(id))) == .invalidState)
        #expect(h.run(.deleteJob(id)) == .jobDeleted)
        #expect(errorCode(h.run(.deleteJob(id))) == .jobNotFound)
        #expect(errorCode(h.query(.getJob(id))) == .jobNotFound)
        #expect(h.claim(["t"]) == nil)
        let running = h.add(JobSpec(type: "t"))
        let job = h.claim(["t"])!
        #expect(h.run(.deleteJob(running)) == .jobDeleted)
        #expect(errorCode(h.run(.completeJob(running, token: job.token, result: []))) == .jobNotFound)
        #expect(h.query(.jobRunning(type: "t")) == .jobRunning(count: 0))
    }

    @Test func completedJobsAreDroppedAfterRetention() {
        var config = StateMachine.Configuration()
        config.completedRetention = 5000
        var h = Harness(config)
        let id = h.add(JobSpec(type: "t"))
        let job = h.claim(["t"])!
        _ = h.run(.completeJob(id, token: job.token, result: []))
        h.advance(4999)
        #expect(h.job(id) != nil)
        h.advance(1)
        #expect(h.job(id) == nil)
    }

    @Test func listFiltersAndPages() {
        var h = Harness()
        var ids: [JobID] = []
        for i in 0..<5 { ids.append(h.add(JobSpec(type: i % 2 == 0 ? "a" : "b"))) }
        _ = h.claim(["a"])
        guard case .jobs(let page1, let next) = h.query(.listJobs(JobFilter(type: "a", limit: 2))) else { Issue.record("expected a list of jobs"); return }
        #expect(page1.map(\.id) == [ids[0], ids[2]] && next == ids[2])
        guard case .jobs(let page2, let end) = h.query(.listJobs(JobFilter(type: "a", after: next, limit: 2))) else { Issue.record("expected a list of jobs"); return }
        #expect(page2.map(\.id) == [ids[4]] && end == JobID(0))
        guard case .jobs(let running, _) = h.query(.listJobs(JobFilter(state: .running))) else { Issue.record("expected a list of jobs"); return }
        #expect(running.map(\.id) == [ids[0]])
    }

    @Test(arguments: [
        Command.addJob(JobSpec(type: "")),
        Command.addJob(JobSpec(type: String(repeating: "t", count: 300))),
        Command.addJob(JobSpec(type: "t", timeout: 50)),
        Command.addJob(JobSpec(type: "t", maxAttempts: 1001)),
        Command.addJob(JobSpec(type: "t", uniqueKey: String(repeating: "u", count: 300))),
        Command.claimJob(types: [], worker: "w", wait: 0),
        Command.claimJob(types: [""], worker: "w", wait: 0),
        Command.claimJob(types: Array(repeating: "t", count: 33), worker: "w", wait: 0),
        Command.extendJob(JobID(1), token: FencingToken(1), ttl: 10),
    ])
    func invalidJobArgumentsAreRefused(_ command: Command) {
        var h = Harness()
        #expect(errorCode(h.run(command)) == .invalidArgument)
        #expect(h.machine.jobs.isEmpty)
    }

    @Test func unknownJobIDs() {
        var h = Harness()
        for c in [Command.completeJob(JobID(5), token: FencingToken(1), result: []), .failJob(JobID(5), token: FencingToken(1), error: ""),
                  .abortJob(JobID(5), token: FencingToken(1)), .extendJob(JobID(5), token: FencingToken(1), ttl: 0),
                  .deleteJob(JobID(5)), .requeueJob(JobID(5)), .claimJobByID(JobID(5), worker: "w")] {
            #expect(errorCode(h.run(c)) == .jobNotFound)
        }
    }
}

@Suite struct CompletedRetentionTests {
    @Test func completedJobsBeyondTheCapAreRemovedOldestFirst() {
        var config = StateMachine.Configuration()
        config.maxCompletedJobs = 3
        var h = Harness(config)
        var ids: [JobID] = []
        for _ in 0..<5 {
            let id = h.add(JobSpec(type: "t"))
            let job = h.claim(["t"])!
            _ = h.run(.completeJob(id, token: job.token, result: []))
            ids.append(id)
            h.advance(1)
        }
        #expect(h.job(ids[0]) == nil && h.job(ids[1]) == nil)
        #expect(ids[2...].allSatisfy { h.job($0)?.state == .completed })
        #expect(h.machine.completedCount == 3)
    }

    @Test func deletingACompletedJobDoesNotShortenAnothersRetention() {
        var config = StateMachine.Configuration()
        config.completedRetention = 1000
        var h = Harness(config)
        let a = h.add(JobSpec(type: "t"))
        let ja = h.claim(["t"])!
        _ = h.run(.completeJob(a, token: ja.token, result: []))
        h.advance(500)
        let b = h.add(JobSpec(type: "t"))
        let jb = h.claim(["t"])!
        _ = h.run(.completeJob(b, token: jb.token, result: []))
        #expect(h.run(.deleteJob(a)) == .jobDeleted)
        h.advance(500)  // a's retention would have ended now; b's has 500 ms left
        #expect(h.job(b)?.state == .completed)
        h.advance(500)
        #expect(h.job(b) == nil)
        #expect(h.machine.completedCount == 0)
    }
}
