import BatonClientCore
import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// The clients: the client library's rules (`Session`, `Attempts`, `LeaseClock` of
/// `BatonClientCore`), one command at a time. The simulator only moves their packets and keeps their
/// connections: a connection to a crashed host is refused (or lost, at once, when the host crashes
/// under it, as a kill's RST does); a paused host accepts one and keeps silent.
extension NodeSimulation {
    // MARK: - Clients

    /// How long a client waits for an answer beyond the request's own wait (the library's
    /// `requestTimeout`, scaled to a simulated run).
    static let clientRequestTimeout = 250
    /// How long a client keeps retrying a request beyond its wait (the library's `retryTimeout`).
    static let clientRetryTimeout = Duration.milliseconds(1_000)

    mutating func driveClients() {
        guard !clientsStopped else { return }
        for c in clients.indices {
            if let out = clients[c].outstanding {
                if let retryAt = out.retryAt {
                    if retryAt <= now { sendAttempt(c) }
                } else if let connection = clients[c].connection, !isOpen(connection) {
                    attemptFailed(c, .connectionLost)
                } else if out.timeoutAt <= now {
                    attemptFailed(c, .timedOut)
                }
                continue
            }
            guard clients[c].nextActionAt <= now else { continue }
            startNext(c)
        }
    }

    /// Whether a connection still stands: its host was not crashed or restarted since.
    func isOpen(_ connection: ClientConnection) -> Bool {
        hosts[connection.host].up && hosts[connection.host].incarnation == connection.incarnation
    }

    mutating func startNext(_ c: Int) {
        // A holder whose lease ran out (by its own count) has stopped working under it.
        clients[c].locks = clients[c].locks.filter { $0.value.clock.holds(at: ManualInstant(now)) }
        clients[c].claims = clients[c].claims.filter { $0.value.clock.holds(at: ManualInstant(now)) }
        let key = "lock-\(rng.next() % 2)"
        let live = clients[c].locks.min { $0.key < $1.key }
        var command: Command?
        var query: Query?
        if let (held, holding) = live, holding.since == nil || rng.next() % 3 != 0 {
            // A late grant is renewed before the work starts.
            if holding.since != nil, rng.next() % 3 == 0 {
                command = .releaseLock(key: held, token: holding.token)
                clients[c].locks[held] = nil  // the holder stops using it before it asks to release
            } else {
                command = .renewLock(key: held, token: holding.token, ttl: Milliseconds(100 + UInt32(rng.next() % 300)))
            }
        } else if let (job, holding) = clients[c].claims.min(by: { $0.key < $1.key }) {
            if holding.since == nil {
                command = .extendJob(job, token: holding.token, ttl: Milliseconds(holding.clock.ttl))
            } else {
                command = .completeJob(job, token: holding.token, result: [1])
                clients[c].claims[job] = nil
            }
        } else {
            switch rng.next() % 6 {
            case 0, 1:
                let wait = rng.next() % 2 == 0 ? 0 : 50 + UInt32(rng.next() % 300)
                command = .acquireLock(
                    key: key, owner: "c\(c)", ttl: Milliseconds(50 + UInt32(rng.next() % 350)), wait: Milliseconds(wait))
            case 2:
                command = .addJob(JobSpec(type: "t", payload: [UInt8(c)], timeout: Milliseconds(100 + UInt32(rng.next() % 300))))
            case 3:
                command = .claimJob(types: ["t"], worker: "c\(c)", wait: Milliseconds(rng.next() % 2 == 0 ? 0 : 200))
            default:
                query = .getLock(key: key)
            }
        }
        let sequence = command != nil ? clients[c].session.nextSequence() : SequenceNumber(0)
        let wait = command.map(Self.wait(of:)) ?? .zero
        clients[c].outstanding = Outstanding(
            sequence: sequence, command: command, query: query,
            plan: Attempts(now: ManualInstant(now), wait: wait, retryTimeout: Self.clientRetryTimeout), retryAt: now)
        sendAttempt(c)
    }

    /// How long a command may wait on the node.
    static func wait(of command: Command) -> Duration {
        switch command {
        case .acquireLock(_, _, _, let wait), .claimJob(_, _, let wait): wait.duration
        default: .zero
        }
    }

    /// Sends client `c`'s outstanding request again, on its connection or a new one.
    mutating func sendAttempt(_ c: Int) {
        guard var out = clients[c].outstanding else { return }
        if clients[c].connection.map(isOpen) != true {
            clients[c].connection = nil
            // The library's connect: the candidates in the session's order, the first that accepts.
            for candidate in clients[c].session.candidates() {
                guard let host = host(at: candidate), hosts[host].up else { continue }
                clients[c].connection = ClientConnection(host: host, incarnation: hosts[host].incarnation)
                clients[c].session.connected(to: candidate)
                break
            }
        }
        guard let connection = clients[c].connection else {
            clients[c].outstanding?.retryAt = nil
            attemptFailed(c, .connectionLost)
            return
        }
        let host = connection.host
        nextAttempt += 1
        nextRoute += 1
        let route = RouteID(nextRoute)
        routes[route] = (c, nextAttempt)
        out.attempts.append(Attempt(serial: nextAttempt, sentAt: now))
        let event: NodeEvent
        if let command = out.command {
            event = .command(route, clients[c].id, out.sequence, command)
        } else {
            event = .read(route, out.query!)
        }
        out.retryAt = nil
        out.timeoutAt = now + Self.clientRequestTimeout + (out.command.map(Self.wait(of:)) ?? .zero).simulatedMilliseconds
        if debugTrace { print("\(now) client \(c) attempt \(nextAttempt) seq \(out.sequence) to host \(host + 1): \(event)") }
        clients[c].outstanding = out
        order += 1
        network.append(
            InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .request(client: c, host: host, event)))
    }

    /// Client `c`'s awaited attempt failed: the core decides whether, when and where to send it
    /// again; a request it gives up on is dropped (its outcome unknown to the client).
    mutating func attemptFailed(_ c: Int, _ failure: AttemptFailure) {
        guard var out = clients[c].outstanding else { return }
        guard let backoff = out.plan.after(failure, at: ManualInstant(now)) else {
            if debugTrace { print("\(now) client \(c) gives up seq \(out.sequence) after \(failure)") }
            clients[c].outstanding = nil
            clients[c].nextActionAt = now + Int(rng.next() % 10)
            return
        }
        if backoff.leavesConnection {
            clients[c].connection = nil
            clients[c].session.follow(backoff.route)
        }
        out.retryAt = now + backoff.delay.simulatedMilliseconds
        clients[c].outstanding = out
    }

    /// An answer reached client `c`.
    mutating func received(_ reply: Reply, by c: Int, attempt serial: Int) {
        guard let out = clients[c].outstanding, out.retryAt == nil, let attempt = out.attempts.last, attempt.serial == serial else {
            return  // an attempt no longer awaited
        }
        if case .error(let e) = reply, case let failure = AttemptFailure(e), failure != .final {
            attemptFailed(c, failure)
            return
        }
        clients[c].outstanding = nil
        clients[c].nextActionAt = now + Int(rng.next() % 10)
        acknowledgedCommands += 1
        if let query = out.query {
            checkRead(query, reply, askedAt: attempt.sentAt)
            return
        }
        let sent = ManualInstant(attempt.sentAt)
        let answered = ManualInstant(now)
        let faults = options.clientFaults
        switch (out.command!, reply) {
        case (.acquireLock(let key, _, let ttl, _), .lockAcquired(.granted(let token, _, let left))):
            grants += 1
            let clock = LeaseClock(ttl: ttl.duration, sent: sent, answered: answered, leaseLeft: left, faults: faults)
            guard clock.holds(at: answered) else { return }  // its holder knows it is over
            clients[c].locks[key] = Holding(token: token, clock: clock, since: clock.needsConfirming(at: answered) ? nil : now)
            if clients[c].locks[key]?.since != nil { checkGrant(of: key, token: token, to: c) }
        case (.renewLock(let key, let token, _), .lockRenewed(_, let left)):
            guard var holding = clients[c].locks[key], holding.token == token else { return }
            holding.clock.renewed(sent: sent, answered: answered, leaseLeft: left, faults: faults)
            if holding.since == nil { holding.since = now }  // a late grant confirmed: the work starts
            clients[c].locks[key] = holding
            if holding.works(at: now) { checkGrant(of: key, token: token, to: c) }
        case (.renewLock(let key, _, _), .error):
            clients[c].locks[key] = nil
        case (.addJob, .jobAdded(let id, _)):
            acknowledgedJobs.insert(id)
        case (.claimJob, .jobClaimed(let job?)):
            let clock = LeaseClock(ttl: job.timeout.duration, sent: sent, answered: answered, leaseLeft: job.leaseLeft, faults: faults)
            guard clock.holds(at: answered) else { return }
            clients[c].claims[job.id] = Holding(token: job.token, clock: clock, since: clock.needsConfirming(at: answered) ? nil : now)
            if clients[c].claims[job.id]?.since != nil { checkClaim(of: job.id, token: job.token, by: c) }
        case (.extendJob(let job, let token, _), .jobExtended(_, let left)):
            guard var holding = clients[c].claims[job], holding.token == token else { return }
            holding.clock.renewed(sent: sent, answered: answered, leaseLeft: left, faults: faults)
            if holding.since == nil { holding.since = now }
            clients[c].claims[job] = holding
            if holding.works(at: now) { checkClaim(of: job, token: token, by: c) }
        case (.extendJob(let job, _, _), .error):
            clients[c].claims[job] = nil
        default:
            break
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up: the simulator steps one at a time.
    var simulatedMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
