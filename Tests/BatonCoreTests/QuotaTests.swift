import BatonProtocol
import Testing

@testable import BatonCore

/// The quotas that keep one runaway producer from filling every member's memory at once (all three
/// apply the same log, so they would run out together).
@Suite struct QuotaTests {
    static func harness(
        maxJobs: Int = 1_000_000, maxJobBytes: Int = 1 << 30, maxLocks: Int = 1_000_000, maxClients: Int = 100_000
    ) -> Harness {
        var c = StateMachine.Configuration()
        c.maxClients = maxClients
        c.maxJobs = maxJobs
        c.maxJobBytes = maxJobBytes
        c.maxLocks = maxLocks
        return Harness(c)
    }

    /// Unfinished jobs (queued, running, dead) count; completed ones do not, and a delete makes room.
    @Test func jobsBeyondMaxJobsAreRefusedUntilRoomIsMade() throws {
        var h = Self.harness(maxJobs: 2)
        let first = h.add(JobSpec(type: "t"))
        _ = h.add(JobSpec(type: "t", maxAttempts: 1))
        let refused = h.run(.addJob(JobSpec(type: "t")))
        #expect(errorCode(refused) == .quotaExceeded)
        if case .error(let e) = refused { #expect(e.message.contains("limits.maxJobs")) }
        #expect(errorCode(h.run(.addJob(JobSpec(type: "u", uniqueKey: "k")))) == .quotaExceeded)  // a new unique key too

        let maybeClaimed = h.claim(["t"])
        let claimed = try #require(maybeClaimed)
        #expect(claimed.id == first)
        #expect(h.run(.completeJob(first, token: claimed.token, result: [])) == .jobCompleted)
        let third = h.add(JobSpec(type: "t", uniqueKey: "k"))  // the completed job left room
        // Full again, but an add of a unique key already held is answered with its job.
        #expect(h.run(.addJob(JobSpec(type: "t", uniqueKey: "k"))) == .jobAdded(third, created: false))
        #expect(errorCode(h.run(.addJob(JobSpec(type: "t")))) == .quotaExceeded)
        #expect(h.run(.deleteJob(third)) == .jobDeleted)
        _ = h.add(JobSpec(type: "t"))
        #expect(h.job(first)?.state == .completed)  // the count quota never removes completed jobs
    }

    /// An add that would pass maxJobBytes removes completed jobs, oldest first, to make room; when the
    /// unfinished jobs alone leave none, it is refused and nothing is removed.
    @Test func completedJobsMakeRoomForBytes() throws {
        var h = Self.harness(maxJobBytes: 100)
        var ids: [JobID] = []
        for _ in 0..<2 {
            let id = h.add(JobSpec(type: "t", payload: Array(repeating: 1, count: 30)))
            let maybeJob = h.claim(["t"])
        let job = try #require(maybeJob)
            #expect(h.run(.completeJob(id, token: job.token, result: Array(repeating: 2, count: 10))) == .jobCompleted)
            ids.append(id)
        }
        // 80 bytes held, all completed. 30 more fit beside one of them: the oldest goes.
        let big = h.add(JobSpec(type: "t", payload: Array(repeating: 3, count: 30)))
        #expect(h.job(ids[0]) == nil && h.job(ids[1])?.state == .completed)
        #expect(h.machine.quotas.first { $0.name == "maxJobBytes" }?.used == 70)
        // 71 more than the 30 unfinished bytes can never fit: refused, and the completed job stays.
        let refused = h.run(.addJob(JobSpec(type: "t", payload: Array(repeating: 4, count: 71))))
        #expect(errorCode(refused) == .quotaExceeded)
        if case .error(let e) = refused { #expect(e.message.contains("limits.maxJobBytes")) }
        #expect(h.job(ids[1])?.state == .completed && h.job(big)?.state == .queued)
    }

    /// A completion is never refused; a result that passes maxJobBytes removes older completed jobs.
    @Test func aLargeResultRemovesOlderCompletedJobs() throws {
        var h = Self.harness(maxJobBytes: 100)
        let old = h.add(JobSpec(type: "t", payload: Array(repeating: 1, count: 20)))
        let maybeOld = h.claim(["t"])
        let oldClaim = try #require(maybeOld)
        #expect(h.run(.completeJob(old, token: oldClaim.token, result: Array(repeating: 2, count: 20))) == .jobCompleted)
        let new = h.add(JobSpec(type: "t", payload: Array(repeating: 3, count: 20)))
        let maybeNew = h.claim(["t"])
        let newClaim = try #require(maybeNew)
        #expect(h.run(.completeJob(new, token: newClaim.token, result: Array(repeating: 4, count: 50))) == .jobCompleted)
        #expect(h.job(old) == nil)
        #expect(h.job(new)?.result.count == 50)
        #expect(h.machine.quotas.first { $0.name == "maxJobBytes" }?.used == 70)
    }

    /// New keys beyond maxLocks are refused; waiting on a held key and re-taking a freed one are not.
    @Test func locksBeyondMaxLocksAreRefused() {
        var h = Self.harness(maxLocks: 2)
        let a = h.grantedToken("a")
        _ = h.grantedToken("b")
        let refused = h.acquire("c")
        #expect(errorCode(refused) == .quotaExceeded)
        if case .error(let e) = refused { #expect(e.message.contains("limits.maxLocks")) }
        #expect(h.acquire("a", client: ClientID(2), wait: 1000) == nil)  // waits in line for a held key
        #expect(h.run(.releaseLock(key: "a", token: a)) == .lockReleased)  // passes to the waiter
        #expect(errorCode(h.acquire("c")) == .quotaExceeded)
        h.advance(5_000)  // every lease ends; the keys are free
        _ = h.grantedToken("c")
    }

    /// A client without a session is refused beyond maxClients, and nothing of it is remembered;
    /// clients with sessions carry on, and one whose session ended makes room.
    @Test func newClientsBeyondMaxClientsAreRefused() {
        var h = Self.harness(maxClients: 2)
        _ = h.grantedToken("a", client: ClientID(1))
        _ = h.grantedToken("b", client: ClientID(2))
        let refused = h.acquire("c", client: ClientID(3))
        #expect(errorCode(refused) == .quotaExceeded)
        if case .error(let e) = refused { #expect(e.message.contains("limits.maxClients")) }
        #expect(h.query(.getLock(key: "c")) == .lock(nil))
        #expect(errorCode(h.run(.addJob(JobSpec(type: "t")), client: ClientID(1))) == nil)  // a known client carries on
        // Sequence zero keeps no session, so it is not refused.
        #expect(h.send(.releaseLock(key: "x", token: FencingToken(1)), client: ClientID(4), sequence: SequenceNumber(0)).map(errorCode) == .staleToken)
        h.advance(UInt64(h.machine.configuration.sessionTimeout.rawValue) + 10_000)  // both sessions end
        _ = h.grantedToken("c", client: ClientID(3))
    }

    /// A restored machine counts the same as the one that took the snapshot.
    @Test func quotasSurviveASnapshot() throws {
        var h = Self.harness()
        let done = h.add(JobSpec(type: "t", payload: [1, 2, 3]))
        let maybeJob = h.claim(["t"])
        let job = try #require(maybeJob)
        #expect(h.run(.completeJob(done, token: job.token, result: [4, 5])) == .jobCompleted)
        _ = h.add(JobSpec(type: "t", payload: [6]))
        _ = h.grantedToken("k")
        _ = h.run(.putSchedule(ScheduleSpec(name: "s", every: 60_000, job: JobSpec(type: "t"))))
        let restored = try StateMachine(restoring: h.machine.snapshot(), configuration: h.machine.configuration)
        #expect(restored.quotas.map(\.used) == [1, 6, 1, 1, 1])
        #expect(restored.quotas.map(\.used) == h.machine.quotas.map(\.used))
    }
}
