import BatonClient
import BatonProtocol
import BatonTestSupport
import NIOConcurrencyHelpers
import Testing

/// The client library never believes in a lease longer than the node holds it, whatever delays the
/// node's answers: here a proxy holds them back (as a paused leader or a slow network would). Each
/// test compares two outcomes on this machine's clock: when the guarded work stopped, and when the
/// node handed the lock or job to someone else. The first must come first.
@Suite(.heavy, .timeLimit(.minutes(1))) struct LeaseCountingTests {
    /// When things happened, on this machine's monotonic clock.
    final class Moments: Sendable {
        private let box = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
        func mark(_ name: String) { box.withLockedValue { $0[name] = .now } }
        subscript(_ name: String) -> ContinuousClock.Instant? { box.withLockedValue { $0[name] } }

        /// Waits until `name` is marked.
        func wait(for name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await eventually("'\(name)' is marked", every: .milliseconds(10), sourceLocation: sourceLocation) { self[name] != nil }
        }
    }

    /// A body that runs until it is cancelled, and marks when it started and stopped.
    static func guardedWork(_ moments: Moments) async throws {
        moments.mark("started")
        do {
            try await Task.sleep(for: .seconds(120))
        } catch {
            moments.mark("stopped")
            throw error
        }
    }

    /// Renewals that go unanswered: the body is stopped before the lease can end on the node, and so
    /// before the next holder is granted the lock. (Before, a renewal that hung kept the body running
    /// for the client's request timeout, 5 s, past a 2 s lease.)
    @Test func withLockStopsItsBodyBeforeTheLeaseEndsWhenRenewalsGoUnanswered() async throws {
        try await withNode { node in
            let proxy = try await HoldingProxy.start(to: node.port)
            let held = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(proxy.port)"], name: "held"))
            let moments = Moments()
            let holder = Task { try await held.withLock("k", ttl: .seconds(2)) { _ in try await Self.guardedWork(moments) } }
            try await moments.wait(for: "started")
            try await proxy.hold()
            let other = node.client("other")
            guard case .granted = try await other.acquireLock("k", ttl: .seconds(5), wait: .seconds(30)) else {
                Issue.record("the next holder was not granted the lock")
                return
            }
            moments.mark("next holder")
            try await proxy.release()  // so the library's release, after the lease is lost, is answered
            await #expect(throws: BatonClientError.self) { try await holder.value }
            let (stopped, next) = (try #require(moments["stopped"]), try #require(moments["next holder"]))
            #expect(stopped < next, "the body ran \(stopped - next) into the next holder's lease")
            await held.shutdown()
            await other.shutdown()
            try await proxy.close()
        }
    }

    /// A waited grant whose answer reaches the client only after its lease ended (the failover case:
    /// the answer is remembered and sent again late). The body must not start: the late grant is
    /// renewed first, which fails, the lock being someone else's by then. (Before, the client counted
    /// the lease from the answer's arrival and ran the body beside the next holder.)
    @Test func aGrantAnsweredAfterItsLeaseEndedNeverRunsTheBody() async throws {
        try await withNode { node in
            let first = node.client("first")
            guard case .granted(let firstToken, _, _) = try await first.acquireLock("k", ttl: .seconds(60)) else {
                Issue.record("the first holder was not granted the lock")
                return
            }
            let proxy = try await HoldingProxy.start(to: node.port)
            let late = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(proxy.port)"], name: "late"))
            _ = try await late.serverTime()  // connected, HELLO answered
            try await proxy.hold()
            let moments = Moments()
            let waiter = Task {
                try await late.withLock("k", ttl: .seconds(1), wait: .seconds(30)) { _ in try await Self.guardedWork(moments) }
            }
            try await first.waitForWaiters(1, on: "k")
            let third = node.client("third")
            let thirdWaits = Task { try await third.acquireLock("k", ttl: .seconds(30), wait: .seconds(30)) }
            try await first.waitForWaiters(2, on: "k")
            // The first holder lets go (a release, so how fast the queue forms does not matter), the
            // late client is granted (unheard), its lease ends, the third is granted.
            try await first.releaseLock("k", token: firstToken)
            guard case .granted = try await thirdWaits.value else {
                Issue.record("the third client was not granted the lock")
                return
            }
            try await proxy.release()
            await #expect(throws: BatonClientError.self) { try await waiter.value }
            #expect(moments["started"] == nil, "the body ran on a lease that had ended")
            for c in [first, late, third] { await c.shutdown() }
            try await proxy.close()
        }
    }

    /// A JobWorker whose extends go unanswered stops its handler before the claim can end on the
    /// node, and so before the job is claimed again.
    @Test func aJobWorkerStopsItsHandlerBeforeTheClaimEndsWhenExtendsGoUnanswered() async throws {
        try await withNode { node in
            let proxy = try await HoldingProxy.start(to: node.port)
            let workerClient = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(proxy.port)"], name: "worker"))
            let moments = Moments()
            let worker = JobWorker(client: workerClient, types: ["t"]) { _ in
                try await Self.guardedWork(moments)
                return []
            }
            let running = Task { try await worker.run() }
            let other = node.client("other")
            _ = try await other.addJob(JobSpec(type: "t", maxAttempts: 3, timeout: 2_000, backoff: 100))
            try await moments.wait(for: "started")
            try await proxy.hold()
            let again = try await other.claimJob(types: ["t"], wait: .seconds(30))
            moments.mark("claimed again")
            #expect(again?.attempt == 2)
            let (stopped, next) = (try #require(moments["stopped"]), try #require(moments["claimed again"]))
            #expect(stopped < next, "the handler ran \(stopped - next) into the next claim")
            running.cancel()
            try await proxy.release()
            _ = try? await running.value
            await workerClient.shutdown()
            await other.shutdown()
            try await proxy.close()
        }
    }

    /// A retry answered from the node's memory (section 5 of PROTOCOL.md) says what the lease has
    /// left when the retry is answered, not at the grant. Node and test share this machine's clock.
    @Test func aRememberedGrantIsRecountedWhenSentAgain() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            let acquire = Request.command(SequenceNumber(1), .acquireLock(key: "k", owner: "o", ttl: 10_000, wait: 0))
            try await raw.send(acquire, id: 2)
            guard case .lockAcquired(.granted(let token, let expiresAt, let first)) = try await raw.nextReply().reply else {
                Issue.record("not granted")
                return
            }
            let received = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(300))
            let resent = ContinuousClock.now
            try await raw.send(acquire, id: 3)
            guard case .lockAcquired(.granted(let again, let expiresAgain, let second)) = try await raw.nextReply().reply else {
                Issue.record("the retry was not answered with the remembered grant")
                return
            }
            #expect(again == token && expiresAgain == expiresAt)
            let waited = resent - received
            let waitedMs = UInt32(waited.components.seconds * 1000 + waited.components.attoseconds / 1_000_000_000_000_000)
            #expect(second.rawValue + waitedMs <= first.rawValue + 1, "\(second) left after \(waited), \(first) at first")
            await raw.close()
        }
    }

}
