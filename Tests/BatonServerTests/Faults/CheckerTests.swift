import BatonProtocol
import Testing

/// Every checker flags a history broken on purpose, and passes the same history unbroken.
@Suite struct CheckerTests {
    typealias Op = History.Operation

    /// A lease answer: granted `token` at node time `at` (ms) with `left` ms left.
    static func lease(_ token: UInt64, at: UInt64, left: UInt32, job: JobID? = nil) -> History.Outcome {
        .lease(token: FencingToken(token), expiresAt: Timestamp(milliseconds: at + UInt64(left)), left: Milliseconds(left), job: job)
    }

    static func acquire(_ p: Int, _ key: String, ttl: UInt32 = 1_000, sent: Int64, answered: Int64, _ outcome: History.Outcome) -> Op {
        Op(process: p, call: .acquire(key: key, ttl: Milliseconds(ttl), wait: 5_000), invoke: sent * 1000, complete: answered * 1000, outcome: outcome)
    }

    /// Holder 1 is granted at 0 ms (counted to 1,000), renews at 600 (counted to 1,600), holder 2's
    /// waited grant arrives at `second` ms.
    static func twoHolders(second: Int64, released: Bool = false) -> History {
        var h = History()
        h.operations.append(acquire(1, "k", sent: 0, answered: 2, lease(10, at: 1_000_001, left: 1_000)))
        h.operations.append(Op(
            process: 1, call: .renew(key: "k", token: FencingToken(10), ttl: 1_000), invoke: 600_000, complete: 603_000,
            outcome: lease(10, at: 1_000_601, left: 1_000)))
        if released {
            h.operations.append(Op(process: 1, call: .release(key: "k", token: FencingToken(10)), invoke: 700_000, complete: 702_000, outcome: .done))
        }
        h.operations.append(acquire(2, "k", sent: 100, answered: second, lease(11, at: 1_000_000 + UInt64(second), left: 1_000)))
        return h
    }

    @Test func mutualExclusionFlagsAGrantInsideTheHoldersCount() {
        #expect(Checkers.mutualExclusion(Self.twoHolders(second: 1_650)).isEmpty)
        #expect(Checkers.mutualExclusion(Self.twoHolders(second: 750, released: true)).isEmpty)
        let early = Checkers.mutualExclusion(Self.twoHolders(second: 1_500))
        #expect(early.count == 1 && early[0].message.contains("100 ms before"), "\(early)")
    }

    /// The library stops a tenth of the TTL early, so a grant 50 ms before the protocol count ends
    /// breaks the protocol rule but not the library's.
    @Test func theClientLibrarysCountStopsATenthEarly() {
        let history = Self.twoHolders(second: 1_550)
        #expect(Checkers.mutualExclusion(history, count: .protocolRule).count == 1)
        #expect(Checkers.mutualExclusion(history, count: .clientLibrary).isEmpty)
        #expect(Checkers.mutualExclusion(Self.twoHolders(second: 1_400), count: .clientLibrary).count == 1)
    }

    @Test func fencingFlagsATokenTwiceAndTokensOutOfOrder() {
        var good = History()
        good.operations.append(Self.acquire(1, "a", sent: 0, answered: 5, Self.lease(10, at: 1, left: 1_000)))
        good.operations.append(Self.acquire(2, "b", sent: 10, answered: 15, Self.lease(12, at: 11, left: 1_000)))
        good.operations.append(Self.acquire(3, "c", sent: 3, answered: 20, Self.lease(11, at: 4, left: 1_000)))  // concurrent: any order
        #expect(Checkers.fencing(good).isEmpty)

        var twice = good
        twice.operations.append(Self.acquire(4, "d", sent: 30, answered: 31, Self.lease(12, at: 31, left: 1_000)))
        #expect(Checkers.fencing(twice).contains { $0.message.contains("handed out twice") })

        var backwards = good
        backwards.operations.append(Self.acquire(4, "d", sent: 30, answered: 31, Self.lease(9, at: 31, left: 1_000)))
        #expect(Checkers.fencing(backwards).contains { $0.message.contains("token 9") })
    }

    @Test func jobsFlagsALostAddATwiceCompletedJobAndALateCompletion() {
        let job = JobID(7)
        var h = History()
        h.operations.append(Op(process: 1, call: .addJob(type: "t", uniqueKey: ""), invoke: 0, complete: 1_000, outcome: .added(job)))
        h.operations.append(Op(process: 2, call: .claim(type: "t"), invoke: 2_000, complete: 3_000, outcome: Self.lease(20, at: 3, left: 1_000, job: job)))
        h.operations.append(Op(process: 2, call: .complete(job, token: FencingToken(20)), invoke: 500_000, complete: 501_000, outcome: .done))
        #expect(Checkers.jobs(h, present: { $0 == job }).isEmpty)
        #expect(Checkers.jobs(h, present: { _ in false }).contains { $0.message.contains("is gone") })

        var late = h
        late.operations.insert(
            Op(process: 3, call: .claim(type: "t"), invoke: 100_000, complete: 200_000, outcome: Self.lease(21, at: 200, left: 1_000, job: job)),
            at: 2)
        #expect(Checkers.jobs(late, present: { _ in true }).contains { $0.message.contains("after token 21 claimed") })

        var twice = late
        twice.operations.append(Op(process: 3, call: .complete(job, token: FencingToken(21)), invoke: 600_000, complete: 601_000, outcome: .done))
        #expect(Checkers.jobs(twice, present: { _ in true }).contains { $0.message.contains("completed under tokens") })
    }

    @Test func clusterClockFlagsAGainOnRealTime() {
        var h = History()
        // Answers at node times 1,000,000 and 1,000,500, the second sent 400 ms after the first's request...
        h.operations.append(Self.acquire(1, "a", sent: 0, answered: 10, Self.lease(1, at: 1_000_000, left: 1_000)))
        h.operations.append(Self.acquire(2, "b", sent: 400, answered: 520, Self.lease(2, at: 1_000_500, left: 1_000)))
        #expect(Checkers.clusterClock(h).isEmpty)  // ...and answered 520 ms after it: no gain
        var gained = h
        gained.operations[1].complete = 450_000  // answered 450 ms after: the clock gained 50 ms
        let v = Checkers.clusterClock(gained)
        #expect(v.count == 1 && v[0].message.contains("gained 50 ms"), "\(v)")
    }

    /// A holder's write refused inside its count, and a stale write accepted, are both flagged.
    @Test func fencedWritesFlagsARefusalInsideTheLeaseAndAStaleAcceptance() {
        func write(_ p: Int, _ token: UInt64, at: Int64, paused: Bool = false, _ outcome: History.Outcome) -> Op {
            Op(process: p, call: .write(key: "k", token: FencingToken(token), paused: paused), invoke: at * 1000, complete: (at + 1) * 1000, outcome: outcome)
        }
        var h = History()
        h.operations.append(Self.acquire(1, "k", sent: 0, answered: 2, Self.lease(10, at: 1_000_001, left: 1_000)))
        h.operations.append(write(1, 10, at: 5, .done))
        h.operations.append(Self.acquire(2, "k", sent: 100, answered: 1_100, Self.lease(11, at: 1_001_100, left: 1_000)))
        h.operations.append(write(2, 11, at: 1_105, .done))
        var good = h
        good.operations.append(write(1, 10, at: 1_500, paused: true, .refused("stale")))
        #expect(Checkers.fencedWrites(good).isEmpty)

        var ignoresTokens = h
        ignoresTokens.operations.append(write(1, 10, at: 1_500, paused: true, .done))
        #expect(Checkers.fencedWrites(ignoresTokens).contains { $0.message.contains("accepted after one with token 11") })

        var refusedEarly = h
        refusedEarly.operations[1].outcome = .refused("stale")
        #expect(Checkers.fencedWrites(refusedEarly).contains { $0.message.contains("refused") })

        let resource = FencedResource()
        #expect(throws: Never.self) { try resource.write("k", token: FencingToken(11)) }
        #expect(throws: FencedResource.Stale.self) { try resource.write("k", token: FencingToken(10)) }
    }
}
