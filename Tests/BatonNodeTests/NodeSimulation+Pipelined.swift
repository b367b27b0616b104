import BatonClientCore
import BatonProtocol

@testable import BatonNode

/// Where an answer to the pipelining session goes: which pair, which attempt, and which of the two.
struct PipelinedRoute {
    var pair: Int
    var attempt: Int
    var isProbe: Bool
}

/// A session that pipelines, as both client libraries do (issue 35, item 1): every 50 ms it
/// sends `Options.pipelinedDepth` pairs, each a LOCK_ACQUIRE of a key of its own then a LOCK_GET
/// of that key, sent together in one write to the member its `Session` tries first; a pair that gets
/// NOT_LEADER or no answer is sent again as its `Attempts` say, both requests, the acquire with its
/// sequence number (a pair given up on is not checked).
///
/// The invariant (PROTOCOL.md §1, requests on a connection are applied in the order they arrive):
/// when an attempt's acquire is granted, the LOCK_GET sent behind it in the same write, if answered
/// at all, shows the lock held under the token granted. The keys are the session's own and their
/// leases outlast the run, so nothing else may change what the query shows.
struct PipelinedSession {
    struct Pair {
        var key: String
        var sequence: SequenceNumber
        var attempts = 0
        var plan: Attempts<ManualInstant>
        /// When to send it (again); nil while an attempt is awaited.
        var retryAt: Int?
        var timeoutAt = 0
        /// The connection its last attempt went on.
        var sentOn = NodeSimulation.ClientConnection(host: 0, incarnation: 0)
        var granted: [Int: FencingToken] = [:]
        var probed: [Int: LockInfo?] = [:]
        var done = false
    }

    var session: Session
    var id: ClientID { session.clientID }
    /// The host its connection is to (with that host's start); nil: none.
    var connection: NodeSimulation.ClientConnection?
    var pairs: [Pair] = []
    var routes: [RouteID: PipelinedRoute] = [:]
    var nextBurstAt = 0
    /// Pairs whose query was checked against its acquire's grant.
    var checked = 0
}

extension NodeSimulation {
    mutating func drivePipelined() {
        guard !clientsStopped else { return }
        var burst: [Int] = []
        for p in pipelined.pairs.indices where !pipelined.pairs[p].done {
            if let retryAt = pipelined.pairs[p].retryAt {
                if retryAt <= now { burst.append(p) }
            } else if !isOpen(pipelined.pairs[p].sentOn) {
                pipelinedAttemptFailed(p, .connectionLost)
            } else if pipelined.pairs[p].timeoutAt <= now {
                pipelinedAttemptFailed(p, .timedOut)
            }
        }
        // A new burst of pairs once the last one is answered, every 50 ms: enough to overlap failovers,
        // few enough that the session's locks (held past the run) do not weigh the snapshots down.
        if pipelined.pairs.allSatisfy(\.done), now >= pipelined.nextBurstAt {
            pipelined.nextBurstAt = now + 50
            for _ in 0..<options.pipelinedDepth {
                let n = pipelined.pairs.count
                pipelined.pairs.append(
                    PipelinedSession.Pair(
                        key: "pipelined-\(n)", sequence: pipelined.session.nextSequence(),
                        plan: Attempts(now: ManualInstant(now), wait: .zero, retryTimeout: Self.clientRetryTimeout)))
                burst.append(n)
            }
        }
        guard !burst.isEmpty else { return }
        // One write: every request of the burst reaches the host in the same step, in order.
        if pipelined.connection.map(isOpen) != true {
            pipelined.connection = nil
            if let candidate = pipelined.session.candidates().first(where: { host(at: $0).map { hosts[$0].up } == true }),
                let host = host(at: candidate)
            {
                pipelined.connection = ClientConnection(host: host, incarnation: hosts[host].incarnation)
                pipelined.session.connected(to: candidate)
            }
        }
        guard let connection = pipelined.connection else {
            for p in burst { pipelinedAttemptFailed(p, .connectionLost) }
            return
        }
        let due = now + 1 + Int(rng.next() % UInt64(maxDelay))
        for p in burst {
            pipelined.pairs[p].attempts += 1
            pipelined.pairs[p].retryAt = nil
            pipelined.pairs[p].sentOn = connection
            pipelined.pairs[p].timeoutAt = now + Self.clientRequestTimeout
            let attempt = pipelined.pairs[p].attempts
            let key = pipelined.pairs[p].key
            let acquire = Command.acquireLock(key: key, owner: "pipelined", ttl: Milliseconds(60_000), wait: .zero)
            for isProbe in [false, true] {
                nextRoute += 1
                let route = RouteID(nextRoute)
                pipelined.routes[route] = PipelinedRoute(pair: p, attempt: attempt, isProbe: isProbe)
                let event: NodeEvent =
                    isProbe ? .read(route, .getLock(key: key)) : .command(route, pipelined.id, pipelined.pairs[p].sequence, acquire)
                order += 1
                network.append(InFlight(due: due, order: order, packet: .pipelined(host: connection.host, event)))
            }
        }
    }

    /// Pair `p`'s awaited attempt failed: its `Attempts` say when to send it again, and the session
    /// where; a pair given up on is done, unchecked.
    mutating func pipelinedAttemptFailed(_ p: Int, _ failure: AttemptFailure) {
        guard let backoff = pipelined.pairs[p].plan.after(failure, at: ManualInstant(now)) else {
            pipelined.pairs[p].done = true
            return
        }
        // The first failure on a connection leaves it; the others of the burst follow along.
        if backoff.leavesConnection, pipelined.connection == pipelined.pairs[p].sentOn {
            pipelined.connection = nil
            pipelined.session.follow(backoff.route)
        }
        pipelined.pairs[p].retryAt = now + backoff.delay.simulatedMilliseconds
    }

    mutating func receivedPipelined(_ reply: Reply, _ route: PipelinedRoute) {
        let p = route.pair
        if case .error(let e) = reply {
            let failure = AttemptFailure(e)
            guard failure != .final else {
                fail("pipelined pair \(p) attempt \(route.attempt) answered \(reply)")
                return
            }
            let awaited = pipelined.pairs[p].retryAt == nil && route.attempt == pipelined.pairs[p].attempts
            guard !route.isProbe, !pipelined.pairs[p].done, awaited else { return }
            pipelinedAttemptFailed(p, failure)
            return
        }
        if route.isProbe {
            guard case .lock(let info) = reply else {
                fail("pipelined pair \(p): LOCK_GET answered \(reply)")
                return
            }
            pipelined.pairs[p].probed[route.attempt] = info
        } else {
            guard case .lockAcquired(.granted(let token, _, _)) = reply else {
                fail("pipelined pair \(p): LOCK_ACQUIRE of a key of its own answered \(reply)")
                return
            }
            pipelined.pairs[p].granted[route.attempt] = token
            pipelined.pairs[p].done = true
        }
        guard let token = pipelined.pairs[p].granted[route.attempt], let info = pipelined.pairs[p].probed[route.attempt] else { return }
        pipelined.checked += 1
        if info?.token != token {
            fail(
                "pipelined pair \(p) attempt \(route.attempt): LOCK_GET sent behind the acquire granted token \(token) showed \(info.map { "token \($0.token)" } ?? "no holder")"
            )
        }
    }
}
