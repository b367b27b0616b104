import BatonProtocol
import Testing

@testable import BatonCore

/// JOB_ADD_BATCH and JOB_CLAIM_BATCH (issue 38): a batch is one command, all or nothing.
@Suite struct BatchTests {
    @Test func aBatchAddsEveryJobInOrder() throws {
        var h = Harness()
        let reply = h.run(.addJobs([JobSpec(type: "a", payload: [1]), JobSpec(type: "b", payload: [2]), JobSpec(type: "a", payload: [3])]))
        guard case .jobsAdded(let added) = reply else { throw Failure("not added: \(String(describing: reply))") }
        #expect(added.count == 3 && added.allSatisfy(\.created))
        #expect(added.map(\.id.rawValue) == added.map(\.id.rawValue).sorted(), "ids in the batch's order")
        #expect(h.job(added[1].id)?.payload == [2])
        #expect(h.claim(["a"])?.id == added[0].id)
    }

    @Test func oneBadJobRefusesTheWholeBatch() {
        var h = Harness()
        let before = h.machine.jobs.count
        let reply = h.run(.addJobs([JobSpec(type: "a"), JobSpec(type: ""), JobSpec(type: "c")]))
        #expect(errorCode(reply) == .invalidArgument)
        #expect(errorMessage(reply).contains("job 1 of the batch") && errorMessage(reply).contains("no job was added"), "\(errorMessage(reply))")
        #expect(h.machine.jobs.count == before, "a job of a refused batch was added")
    }

    @Test func anEmptyBatchAndAnOversizedOneAreRefused() {
        var h = Harness()
        #expect(errorCode(h.run(.addJobs([]))) == .invalidArgument)
        let tooMany = Array(repeating: JobSpec(type: "a"), count: h.machine.configuration.maxBatch + 1)
        #expect(errorCode(h.run(.addJobs(tooMany))) == .invalidArgument)
        #expect(h.machine.jobs.isEmpty)
        let most = Array(repeating: JobSpec(type: "a"), count: h.machine.configuration.maxBatch)
        guard case .jobsAdded(let added) = h.run(.addJobs(most)) else {
            Issue.record("a batch of the most allowed was refused")
            return
        }
        #expect(added.count == most.count)
    }

    @Test func aBatchTheQuotasCannotTakeWholeAddsNothing() {
        var configuration = StateMachine.Configuration()
        configuration.maxJobs = 5
        var h = Harness(configuration)
        _ = h.add(JobSpec(type: "a"))
        _ = h.add(JobSpec(type: "a"))
        let reply = h.run(.addJobs(Array(repeating: JobSpec(type: "b"), count: 4)))
        #expect(errorCode(reply) == .quotaExceeded, "\(String(describing: reply))")
        #expect(h.machine.jobs.count == 2)
        guard case .jobsAdded = h.run(.addJobs(Array(repeating: JobSpec(type: "b"), count: 3))) else {
            Issue.record("a batch that fits exactly was refused")
            return
        }
        #expect(h.machine.jobs.count == 5)
    }

    @Test func uniqueKeysInsideABatchAnswerAsOneAddAfterAnother() {
        var h = Harness()
        let held = h.add(JobSpec(type: "t", uniqueKey: "k1"))
        let reply = h.run(.addJobs([JobSpec(type: "t", uniqueKey: "k1"), JobSpec(type: "t", uniqueKey: "k2"), JobSpec(type: "t", uniqueKey: "k2")]))
        guard case .jobsAdded(let added) = reply else {
            Issue.record("not added: \(String(describing: reply))")
            return
        }
        #expect(added[0] == AddedJob(id: held, created: false))
        #expect(added[1].created && added[2] == AddedJob(id: added[1].id, created: false))
    }

    @Test func aBatchClaimTakesUpToItsMaxBestFirst() {
        var h = Harness()
        let low = h.add(JobSpec(type: "t", priority: 0))
        let high = h.add(JobSpec(type: "t", priority: 9))
        let other = h.add(JobSpec(type: "u", priority: 5))
        guard case .jobsClaimed(let two) = h.run(.claimJobs(types: ["t", "u"], worker: "w", max: 2)) else {
            Issue.record("no batch claim")
            return
        }
        #expect(two.map(\.id) == [high, other])
        #expect(Set(two.map(\.token)).count == 2, "each job has a claim of its own")
        #expect(two.allSatisfy { $0.leaseExpiresAt == h.time.adding(60_000) })
        #expect(h.run(.claimJobs(types: ["t", "u"], worker: "w", max: 5)) == .jobsClaimed([h.claimedView(low)].compactMap { $0 }))
        #expect(h.run(.claimJobs(types: ["t"], worker: "w", max: 5)) == .jobsClaimed([]), "none ready: answered with none, never waits")
        #expect(errorCode(h.run(.claimJobs(types: ["t"], worker: "w", max: 0))) == .invalidArgument)
        #expect(errorCode(h.run(.claimJobs(types: [], worker: "w", max: 1))) == .invalidArgument)
    }

    @Test func aCompleteBatchCompletesEachClaimOnItsOwnThenClaims() throws {
        var h = Harness()
        let first = h.add(JobSpec(type: "t"))
        let second = h.add(JobSpec(type: "t"))
        guard let a = h.claim(["t"]), let b = h.claim(["t"]) else { throw Failure("no claims") }
        let next = h.add(JobSpec(type: "t", priority: 1))
        let last = h.add(JobSpec(type: "u"))
        let reply = h.run(
            .completeJobs(
                [
                    JobCompletion(id: a.id, token: a.token, result: [7]),
                    JobCompletion(id: b.id, token: FencingToken(b.token.rawValue + 100)),  // not its claim
                    JobCompletion(id: JobID(999), token: a.token),
                ], claimMax: 5, types: ["t", "u"], worker: "w"))
        guard case .jobsCompleted(let outcomes, let claimed) = reply else { throw Failure("not completed: \(String(describing: reply))") }
        #expect(outcomes == [nil, .claimLost, .jobNotFound], "each completion answered as JOB_COMPLETE would")
        #expect(h.job(first)?.state == .completed && h.job(first)?.result == [7])
        #expect(h.job(second)?.state == .running, "a lost claim does not hold back the others, nor is it applied")
        #expect(claimed.map(\.id) == [next, last], "then ready jobs are claimed, best first")
        #expect(claimed.allSatisfy { h.job($0.id)?.state == .running })
    }

    @Test func aCompleteBatchClaimsOnlyWhatItAsksFor() throws {
        var h = Harness()
        let id = h.add(JobSpec(type: "t"))
        guard let job = h.claim(["t"]) else { throw Failure("no claim") }
        let waiting = h.add(JobSpec(type: "t"))
        #expect(h.run(.completeJobs([JobCompletion(id: id, token: job.token)], claimMax: 0, types: [], worker: "")) == .jobsCompleted([nil], claimed: []))
        #expect(h.job(waiting)?.state == .queued, "claim_max 0 claims nothing")
        #expect(h.run(.completeJobs([], claimMax: 3, types: ["t"], worker: "w")) == .jobsCompleted([], claimed: [h.claimedView(waiting)].compactMap { $0 }))
        #expect(h.run(.completeJobs([], claimMax: 3, types: ["t"], worker: "w")) == .jobsCompleted([], claimed: []), "never waits")
    }

    @Test func aCompleteBatchWithNothingToDoOrTooMuchIsRefused() {
        var h = Harness()
        let most = h.machine.configuration.maxBatch
        #expect(errorCode(h.run(.completeJobs([], claimMax: 0, types: [], worker: "w"))) == .invalidArgument)
        let tooMany = Array(repeating: JobCompletion(id: JobID(1), token: FencingToken(1)), count: most + 1)
        #expect(errorCode(h.run(.completeJobs(tooMany, claimMax: 0, types: [], worker: "w"))) == .invalidArgument)
        #expect(errorCode(h.run(.completeJobs([], claimMax: UInt16(most + 1), types: ["t"], worker: "w"))) == .invalidArgument)
        #expect(errorCode(h.run(.completeJobs([], claimMax: 1, types: [], worker: "w"))) == .invalidArgument, "a claim needs a type")
        let atMost = Array(repeating: JobCompletion(id: JobID(1), token: FencingToken(1)), count: most)
        #expect(h.run(.completeJobs(atMost, claimMax: 0, types: [], worker: "w")) == .jobsCompleted(Array(repeating: .jobNotFound, count: most), claimed: []))
    }
}

/// A test's own failure, thrown where a premise does not hold.
struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func errorMessage(_ reply: Reply?) -> String {
    if case .error(let e)? = reply { return e.message }
    return ""
}

extension Harness {
    /// How job `id` looks claimed now (for comparing a claim's answer).
    func claimedView(_ id: JobID) -> ClaimedJob? {
        machine.jobs[id].map { $0.claimed(at: time) }
    }
}
