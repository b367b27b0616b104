import BatonProtocol
import Testing

@testable import BatonCore

@Suite struct LockTests {
    @Test func grantThenBusyForOthers() {
        var h = Harness()
        let token = h.grantedToken("a")
        guard case .lockAcquired(.busy(let holder, let expiresAt)) = h.acquire("a", client: ClientID(2), owner: "b") else {
            Issue.record("second acquire was not busy")
            return
        }
        #expect(holder == "o")
        #expect(expiresAt == h.time.adding(1000))
        #expect(token.rawValue > 0)
    }

    @Test func tokensStrictlyIncreaseAcrossKeys() {
        var h = Harness()
        let t1 = h.grantedToken("a")
        let t2 = h.grantedToken("b")
        #expect(h.run(.releaseLock(key: "a", token: t1)) == .lockReleased)
        let t3 = h.grantedToken("a")
        #expect(t1 < t2 && t2 < t3)
    }

    @Test func waitersAreGrantedInFIFOOrderOnRelease() {
        var h = Harness()
        let token = h.grantedToken("a")
        for c in 2...5 { #expect(h.acquire("a", client: ClientID(UInt64(c)), wait: 10_000) == nil) }
        guard case .lock(let info?) = h.query(.getLock(key: "a")) else { Issue.record("no lock"); return }
        #expect(info.waiters.map(\.clientID.rawValue) == [2, 3, 4, 5])
        var current = token
        for c in 2...5 {
            #expect(h.run(.releaseLock(key: "a", token: current)) == .lockReleased)
            let last = h.completions.removeLast()
            #expect(last.clientID == ClientID(UInt64(c)))
            guard case .lockAcquired(.granted(let next, _, _)) = last.reply else { Issue.record("not granted"); return }
            #expect(next > current)
            current = next
        }
    }

    @Test func expiredLeasePassesToNextWaiter() {
        var h = Harness()
        _ = h.grantedToken("a", ttl: 500)
        #expect(h.acquire("a", client: ClientID(2), ttl: 700, wait: 5000) == nil)
        h.advance(499)
        #expect(h.completions.isEmpty)
        h.advance(1)
        #expect(h.completions.count == 1)
        guard case .lockAcquired(.granted(_, let expiresAt, _)) = h.completions[0].reply else {
            Issue.record("waiter not granted")
            return
        }
        // The waiter's lease starts when the old one ended.
        #expect(expiresAt == h.time.adding(700))
    }

    @Test func waitRunsOutWithBusy() {
        var h = Harness()
        _ = h.grantedToken("a", ttl: 10_000)
        #expect(h.acquire("a", client: ClientID(2), wait: 300) == nil)
        h.advance(300)
        guard case .lockAcquired(.busy(let holder, _)) = h.completions.first?.reply else {
            Issue.record("no busy answer")
            return
        }
        #expect(holder == "o")
        guard case .lock(let info?) = h.query(.getLock(key: "a")) else { Issue.record("expected the lock's holder"); return }
        #expect(info.waiters.isEmpty)
    }

    /// Found by the node simulator (seed 20036): a waiting acquire's retry, applied at a time past
    /// both the wait and the holder's lease, ran the acquire a second time. The wait ran out first
    /// (answer: busy), but that answer was remembered only after the retry had found no answer and no
    /// wait, so the retry was granted: two answers to one sequence number, and a lock held by a client
    /// that may have been told it was busy.
    @Test func aRetryAppliedAsItsWaitRunsOutGetsTheWaitsAnswer() {
        var h = Harness()
        _ = h.grantedToken("a", ttl: 400)
        let acquire = Command.acquireLock(key: "a", owner: "b", ttl: 1000, wait: 100)
        #expect(h.send(acquire, client: ClientID(2), sequence: SequenceNumber(1)) == nil)
        h.time = h.time.adding(500)  // the retry's stamp: after the wait (100) and the lease (400)
        let retry = h.send(acquire, client: ClientID(2), sequence: SequenceNumber(1))
        guard let timedOut = h.completions.first?.reply, case .lockAcquired(.busy) = timedOut else {
            Issue.record("the wait did not run out with busy: \(h.completions)")
            return
        }
        #expect(retry == timedOut)
        #expect(h.query(.getLock(key: "a")) == .lock(nil))
    }

    @Test func renewExtendsAndStaleTokenIsRefused() {
        var h = Harness()
        let token = h.grantedToken("a", ttl: 1000)
        h.advance(800)
        #expect(h.run(.renewLock(key: "a", token: token, ttl: 1000)) == .lockRenewed(expiresAt: h.time.adding(1000), leaseLeft: 1000))
        h.advance(900)
        guard case .lock(let info?) = h.query(.getLock(key: "a")) else { Issue.record("lock lost after renew"); return }
        #expect(info.token == token)
        h.advance(100)
        #expect(h.query(.getLock(key: "a")) == .lock(nil))
        #expect(errorCode(h.run(.renewLock(key: "a", token: token, ttl: 1000))) == .staleToken)
        #expect(errorCode(h.run(.releaseLock(key: "a", token: token))) == .staleToken)
        let other = h.grantedToken("a")
        #expect(errorCode(h.run(.releaseLock(key: "a", token: token))) == .staleToken)
        #expect(h.run(.releaseLock(key: "a", token: other)) == .lockReleased)
    }

    @Test func renewNeverShortensALease() {
        var h = Harness()
        let token = h.grantedToken("a", ttl: 10_000)
        #expect(h.run(.renewLock(key: "a", token: token, ttl: 200)) == .lockRenewed(expiresAt: h.time.adding(10_000), leaseLeft: 10_000))
    }

    @Test func retriedAcquireIsAnsweredFromTheSession() {
        var h = Harness()
        let first = h.send(.acquireLock(key: "a", owner: "o", ttl: 1000, wait: 0), client: ClientID(1), sequence: SequenceNumber(7))
        let again = h.send(.acquireLock(key: "a", owner: "o", ttl: 1000, wait: 0), client: ClientID(1), sequence: SequenceNumber(7))
        #expect(first == again)
        guard case .lockAcquired(.granted) = first else { Issue.record("not granted"); return }
        // A new sequence number is a new acquire, and the lock is taken.
        guard case .lockAcquired(.busy) = h.send(.acquireLock(key: "a", owner: "o", ttl: 1000, wait: 0), client: ClientID(1), sequence: SequenceNumber(8)) else {
            Issue.record("a new acquire was not busy")
            return
        }
    }

    @Test func retriedWaitingAcquireStaysOneWaiter() {
        var h = Harness()
        _ = h.grantedToken("a")
        let cmd = Command.acquireLock(key: "a", owner: "b", ttl: 1000, wait: 5000)
        #expect(h.send(cmd, client: ClientID(2), sequence: SequenceNumber(1)) == nil)
        #expect(h.send(cmd, client: ClientID(2), sequence: SequenceNumber(1)) == nil)
        guard case .lock(let info?) = h.query(.getLock(key: "a")) else { Issue.record("expected the lock's holder"); return }
        #expect(info.waiters.count == 1)
        h.advance(1000)
        let granted = h.completions.last!.reply
        #expect(h.send(cmd, client: ClientID(2), sequence: SequenceNumber(1)) == granted)
    }

    @Test func forgottenSequenceIsTooOld() {
        var config = StateMachine.Configuration()
        config.sessionWindow = 4
        var h = Harness(config)
        for i in 1...10 { h.send(.releaseLock(key: "k\(i)", token: FencingToken(1)), client: ClientID(1), sequence: SequenceNumber(UInt64(i))).map { _ in () } }
        #expect(errorCode(h.send(.releaseLock(key: "x", token: FencingToken(1)), client: ClientID(1), sequence: SequenceNumber(2))) == .sequenceTooOld)
        #expect(errorCode(h.send(.releaseLock(key: "k9", token: FencingToken(1)), client: ClientID(1), sequence: SequenceNumber(9))) == .staleToken)
    }

    /// Each client's window keeps up to 256 answers on every node, so an answer's size is memory
    /// per client: the large answers are boxed (`indirect`) and a remembered answer stays small.
    @Test func aRememberedAnswerIsSmall() {
        #expect(MemoryLayout<Reply>.stride <= 32)
        #expect(MemoryLayout<RememberedReply>.stride <= 48)
    }

    @Test func detachDropsWaiters() {
        var h = Harness()
        let token = h.grantedToken("a")
        #expect(h.acquire("a", client: ClientID(2), wait: 5000) == nil)
        #expect(h.acquire("a", client: ClientID(3), wait: 5000) == nil)
        _ = h.machine.apply(.detach(ClientID(2)), at: h.time)
        #expect(h.run(.releaseLock(key: "a", token: token)) == .lockReleased)
        #expect(h.completions.map(\.clientID) == [ClientID(3)])
    }

    /// A withdrawn acquire (its HTTP/2 stream was reset) leaves the line and is never answered; the
    /// lock goes to the next in line. A withdraw of a command that no longer waits changes nothing.
    @Test func withdrawTakesOneWaiterOutOfLine() {
        var h = Harness()
        let token = h.grantedToken("a")
        #expect(h.acquire("a", client: ClientID(2), wait: 5000) == nil)  // sequence 1 of client 2
        #expect(h.acquire("a", client: ClientID(3), wait: 5000) == nil)
        _ = h.machine.apply(.withdraw(ClientID(2), SequenceNumber(1)), at: h.time)
        #expect(h.machine.waits.count == 1)
        _ = h.machine.apply(.withdraw(ClientID(1), SequenceNumber(1)), at: h.time)  // the holder's acquire: granted long ago
        #expect(h.run(.releaseLock(key: "a", token: token)) == .lockReleased)
        #expect(h.completions.map(\.clientID) == [ClientID(3)])
        #expect(h.machine.locks["a"]?.holder?.clientID == ClientID(3))

        // The same claim withdrawn: an added job stays queued for the next claim.
        #expect(h.claim(["t"], client: ClientID(4), wait: 5000) == nil)
        _ = h.machine.apply(.withdraw(ClientID(4), SequenceNumber(1)), at: h.time)
        let id = h.add(JobSpec(type: "t"))
        #expect(h.completions.count == 1)
        #expect(h.job(id)?.state == .queued)
    }

    @Test(arguments: [
        Command.acquireLock(key: "", owner: "o", ttl: 1000, wait: 0),
        Command.acquireLock(key: String(repeating: "k", count: 257), owner: "o", ttl: 1000, wait: 0),
        Command.acquireLock(key: "a", owner: String(repeating: "o", count: 257), ttl: 1000, wait: 0),
        Command.acquireLock(key: "a", owner: "o", ttl: 0, wait: 0),
        Command.acquireLock(key: "a", owner: "o", ttl: 99, wait: 0),
        Command.acquireLock(key: "a", owner: "o", ttl: 86_400_001, wait: 0),
        Command.acquireLock(key: "a", owner: "o", ttl: 1000, wait: 3_600_001),
        Command.renewLock(key: "a", token: FencingToken(1), ttl: 0),
        Command.renewLock(key: "", token: FencingToken(1), ttl: 1000),
        Command.releaseLock(key: "", token: FencingToken(1)),
    ])
    func invalidLockArgumentsAreRefused(_ command: Command) {
        var h = Harness()
        #expect(errorCode(h.run(command)) == .invalidArgument)
        #expect(h.machine.locks.isEmpty)
    }

    @Test func listLocksByPrefixInKeyOrder() {
        var h = Harness()
        for k in ["b/2", "a/1", "b/1", "c"] { _ = h.grantedToken(k) }
        guard case .locks(let infos) = h.query(.listLocks(prefix: "b/", after: "", limit: 0)) else { Issue.record("expected a list of locks"); return }
        #expect(infos.map(\.key) == ["b/1", "b/2"])
        guard case .locks(let page) = h.query(.listLocks(prefix: "", after: "a/1", limit: 2)) else { Issue.record("expected a list of locks"); return }
        #expect(page.map(\.key) == ["b/1", "b/2"])
    }

    @Test func timeNeverRunsBackwards() {
        var h = Harness()
        _ = h.grantedToken("a", ttl: 1000)
        h.time = Timestamp(milliseconds: h.time.milliseconds - 500_000)
        #expect(h.machine.now.milliseconds == 1_000_000)
        _ = h.machine.apply(.tick, at: h.time)
        #expect(h.machine.now.milliseconds == 1_000_000)
        guard case .lock(.some) = h.query(.getLock(key: "a")) else { Issue.record("lock lost on a clock step back"); return }
    }
}
