import BatonProtocol
import Testing

@testable import BatonCore

@Suite struct AdminTests {
    @Test func forceReleasePassesTheLockOn() {
        var h = Harness()
        let token = h.grantedToken("k")
        #expect(h.acquire("k", client: ClientID(2), wait: 5000) == nil)
        #expect(h.run(.forceReleaseLock(key: "k")) == .lockForceReleased(token: token))
        guard case .lockAcquired(.granted(let next, _, _)) = h.completions.last?.reply else { Issue.record("waiter not granted"); return }
        #expect(next > token)
        #expect(errorCode(h.run(.releaseLock(key: "k", token: token))) == .staleToken)
        #expect(errorCode(h.run(.forceReleaseLock(key: "nobody"))) == .lockNotHeld)
    }

    @Test func purgeRemovesOnlyOldJobsInTheState() {
        var h = Harness()
        let dead = h.add(JobSpec(type: "t", maxAttempts: 1))
        let c1 = h.claim(["t"])!
        _ = h.run(.failJob(dead, token: c1.token, error: "x"))
        let done = h.add(JobSpec(type: "t"))
        let c2 = h.claim(["t"])!
        _ = h.run(.completeJob(done, token: c2.token, result: []))
        h.advance(10_000)
        let fresh = h.add(JobSpec(type: "t", maxAttempts: 1))
        let c3 = h.claim(["t"])!
        _ = h.run(.failJob(fresh, token: c3.token, error: "y"))
        #expect(h.run(.purgeJobs(state: .dead, olderThan: 5000)) == .jobsPurged(count: 1))
        #expect(h.job(dead) == nil && h.job(fresh)?.state == .dead && h.job(done)?.state == .completed)
        #expect(h.run(.purgeJobs(state: .completed, olderThan: 0)) == .jobsPurged(count: 1))
        #expect(errorCode(h.run(.purgeJobs(state: .queued, olderThan: 0))) == .invalidArgument)
    }

    @Test func leasesAreListedSoonestFirstAndSummaryCounts() {
        var h = Harness()
        _ = h.grantedToken("late", ttl: 5000)
        _ = h.grantedToken("soon", ttl: 1000)
        let id = h.add(JobSpec(type: "t", timeout: 3000))
        _ = h.claim(["t"])
        _ = h.add(JobSpec(type: "t"))
        guard case .leases(let leases) = h.query(.listLeases(limit: 0)) else { Issue.record("no leases"); return }
        #expect(leases.map(\.key) == ["soon", "t", "late"])
        #expect(leases[1].kind == .job && leases[1].jobID == id)
        let s = h.machine.summary()
        #expect(s.locksHeld == 2 && s.jobsRunning == 1 && s.jobsQueued == 1)
        h.advance(1000)
        #expect(h.machine.summary().locksHeld == 1)
    }
}
