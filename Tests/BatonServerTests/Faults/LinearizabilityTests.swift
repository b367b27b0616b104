import BatonProtocol
import Testing

/// The read checker flags reads no order explains, and accepts the same histories unbroken. Times in
/// milliseconds; every grant has 1,000 ms left.
@Suite struct LinearizabilityTests {
    typealias Op = History.Operation

    static func grant(_ p: Int, _ token: UInt64, sent: Int64, answered: Int64?, wait: UInt32 = 0) -> Op {
        Op(
            process: p, call: .acquire(key: "k", ttl: 1_000, wait: Milliseconds(wait)), invoke: sent * 1000,
            complete: answered.map { $0 * 1000 }, outcome: CheckerTests.lease(token, at: 1_000 + UInt64(sent), left: 1_000))
    }

    static func release(_ p: Int, _ token: UInt64, sent: Int64, answered: Int64, _ outcome: History.Outcome = .done) -> Op {
        Op(process: p, call: .release(key: "k", token: FencingToken(token)), invoke: sent * 1000, complete: answered * 1000, outcome: outcome)
    }

    static func read(_ token: UInt64?, sent: Int64, answered: Int64) -> Op {
        Op(process: 9, call: .read(key: "k"), invoke: sent * 1000, complete: answered * 1000, outcome: .read(token.map(FencingToken.init)))
    }

    static func verdict(_ ops: [Op]) -> Linearizability.Result {
        var h = History()
        h.operations = ops
        return Linearizability.check(h, key: "k")
    }

    static func isViolation(_ r: Linearizability.Result) -> Bool {
        if case .violation = r { true } else { false }
    }

    /// A paused old leader that answers from its own state: the holder it shows was released and
    /// followed by a newer grant before the read was sent.
    @Test func aStaleReadIsFlagged() {
        let before = [Self.grant(1, 10, sent: 0, answered: 2), Self.release(1, 10, sent: 100, answered: 102), Self.grant(2, 11, sent: 150, answered: 152)]
        #expect(Self.verdict(before + [Self.read(11, sent: 200, answered: 205)]) == .linearizable)
        let stale = Self.verdict(before + [Self.read(10, sent: 200, answered: 205)])
        #expect(Self.isViolation(stale), "\(stale)")
        // Sent before the newer grant was answered, the same read may have come first.
        #expect(Self.verdict(before + [Self.read(10, sent: 90, answered: 205)]) == .linearizable)
    }

    @Test func aFreeLockWhileTheHolderStillCountsIsFlagged() {
        let granted = Self.grant(1, 10, sent: 0, answered: 2)
        #expect(Self.isViolation(Self.verdict([granted, Self.read(nil, sent: 300, answered: 305)])))
        #expect(Self.verdict([granted, Self.read(nil, sent: 1_100, answered: 1_105)]) == .linearizable)  // the lease ran out
        // A renewal answered before the read lengthens the count.
        let renewed = Op(
            process: 1, call: .renew(key: "k", token: FencingToken(10), ttl: 1_000), invoke: 600_000, complete: 603_000,
            outcome: CheckerTests.lease(10, at: 1_600, left: 1_000))
        #expect(Self.isViolation(Self.verdict([granted, renewed, Self.read(nil, sent: 1_200, answered: 1_205)])))
        #expect(Self.verdict([granted, renewed, Self.read(nil, sent: 1_700, answered: 1_705)]) == .linearizable)
    }

    @Test func busyOnAFreeLockIsFlagged() {
        let released = [Self.grant(1, 10, sent: 0, answered: 2), Self.release(1, 10, sent: 100, answered: 102)]
        let busy = Op(process: 2, call: .acquire(key: "k", ttl: 1_000, wait: 0), invoke: 200_000, complete: 205_000, outcome: .none)
        #expect(Self.isViolation(Self.verdict(released + [busy])))
        var overlapping = busy
        overlapping.invoke = 50_000  // sent while it was held
        #expect(Self.verdict(released + [overlapping]) == .linearizable)
    }

    /// A token no answered grant explains needs an acquire that got no answer.
    @Test func aReadOfAnUnknownGrantNeedsAnUnansweredAcquire() {
        let seen = Self.read(12, sent: 300, answered: 305)
        #expect(Self.isViolation(Self.verdict([seen])))
        var lost = Self.grant(1, 12, sent: 0, answered: 50)
        lost.outcome = .unknown
        #expect(Self.verdict([lost, seen]) == .linearizable)
    }

    /// An unanswered release may have freed the lock; an answered one surely did.
    @Test func anUnansweredReleaseMayHaveTakenEffect() {
        let granted = Self.grant(1, 10, sent: 0, answered: 2)
        #expect(Self.verdict([granted, Self.release(1, 10, sent: 100, answered: 150, .unknown), Self.read(nil, sent: 300, answered: 305)]) == .linearizable)
        #expect(Self.verdict([granted, Self.release(1, 10, sent: 100, answered: 150, .unknown), Self.read(10, sent: 300, answered: 305)]) == .linearizable)
        #expect(Self.isViolation(Self.verdict([granted, Self.release(1, 10, sent: 100, answered: 150), Self.read(10, sent: 300, answered: 305)])))
    }

    /// A busy history stays cheap: 3,000 operations of six holders and three readers.
    @Test func aLongHistoryIsDecided() {
        var ops: [Op] = []
        var t: Int64 = 0
        for n in 0..<300 {
            let token = UInt64(100 + n)
            ops.append(Self.grant(n % 6, token, sent: t, answered: t + 5, wait: 2_000))
            for r in 0..<3 { ops.append(Self.read(token, sent: t + 10 + Int64(r), answered: t + 30)) }
            ops.append(Self.release(n % 6, token, sent: t + 40, answered: t + 45))
            for r in 0..<3 { ops.append(Self.read(nil, sent: t + 40 + Int64(r), answered: t + 60)) }
            ops.append(Op(process: 7, call: .acquire(key: "k", ttl: 1_000, wait: 0), invoke: (t + 20) * 1000, complete: (t + 25) * 1000, outcome: .none))
            ops.append(Self.release(n % 6, token, sent: t + 46, answered: t + 90, .unknown))
            t += 61
        }
        #expect(Self.verdict(ops) == .linearizable)
    }
}
