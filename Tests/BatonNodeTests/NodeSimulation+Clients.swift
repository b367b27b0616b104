import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// The clients, as the client library behaves: one command at a time, retried with its sequence number.
extension NodeSimulation {
    // MARK: - Clients

    mutating func driveClients() {
        guard !clientsStopped else { return }
        for c in clients.indices {
            if let out = clients[c].outstanding {
                // No answer (its host died or the answer is lost): send it again, same sequence number.
                if out.retryAt <= now { sendAttempt(c, to: Int(rng.next() % UInt64(hosts.count))) }
                continue
            }
            guard clients[c].nextActionAt <= now else { continue }
            startNext(c)
        }
    }

    mutating func startNext(_ c: Int) {
        let key = "lock-\(rng.next() % 2)"
        let live = clients[c].locks.filter { $0.value.end > now }.min { $0.key < $1.key }
        var command: Command?
        var query: Query?
        if let (held, belief) = live, rng.next() % 3 != 0 {
            if rng.next() % 3 == 0 {
                command = .releaseLock(key: held, token: belief.token)
                clients[c].locks[held] = nil  // the holder stops using it before it asks to release
            } else {
                command = .renewLock(key: held, token: belief.token, ttl: Milliseconds(100 + UInt32(rng.next() % 300)))
            }
        } else if let (job, belief) = clients[c].claims.filter({ $0.value.end > now }).min(by: { $0.key < $1.key }) {
            command = .completeJob(job, token: belief.token, result: [1])
            clients[c].claims[job] = nil
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
        if command != nil { clients[c].sequence += 1 }
        clients[c].outstanding = Outstanding(
            sequence: SequenceNumber(clients[c].sequence), command: command, query: query, retryAt: now)
        sendAttempt(c, to: clients[c].guess)
    }

    mutating func sendAttempt(_ c: Int, to host: Int) {
        guard var out = clients[c].outstanding else { return }
        nextAttempt += 1
        nextRoute += 1
        let route = RouteID(nextRoute)
        routes[route] = (c, nextAttempt)
        out.attempts.append(Attempt(serial: nextAttempt, sentAt: now, host: host))
        var wait = 0
        let event: NodeEvent
        if let command = out.command {
            if case .acquireLock(_, _, _, let w) = command { wait = Int(w.rawValue) }
            if case .claimJob(_, _, let w) = command { wait = Int(w.rawValue) }
            event = .command(route, clients[c].id, out.sequence, command)
        } else {
            event = .read(route, out.query!)
        }
        out.retryAt = now + wait + 250
        if debugTrace { print("\(now) client \(c) attempt \(nextAttempt) seq \(out.sequence) to host \(host + 1): \(event)") }
        clients[c].outstanding = out
        order += 1
        network.append(
            InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .request(client: c, host: host, event)))
    }

    /// An answer reached client `c`.
    mutating func received(_ reply: Reply, by c: Int, attempt serial: Int) {
        guard let out = clients[c].outstanding, let attempt = out.attempts.first(where: { $0.serial == serial }) else { return }
        if case .error(let e) = reply, e.code.isRetriable {
            // Try the leader it names, or the next host, soon.
            clients[c].guess = leaderHint(e.message) ?? (attempt.host + 1) % hosts.count
            clients[c].outstanding?.retryAt = now + 2
            clients[c].outstanding?.attempts.removeAll { $0.serial == serial }
            return
        }
        clients[c].outstanding = nil
        clients[c].guess = attempt.host
        clients[c].nextActionAt = now + Int(rng.next() % 10)
        acknowledgedCommands += 1
        // The client library counts a lease from when it sent the request that got it.
        let base = options.clientCountsFromArrival ? now : attempt.sentAt
        if let query = out.query {
            checkRead(query, reply, askedAt: attempt.sentAt)
            return
        }
        switch (out.command!, reply) {
        case (.acquireLock(let key, _, _, _), .lockAcquired(.granted(let token, _, let left))):
            grants += 1
            let belief = Belief(token: token, since: now, end: base + Int(left.rawValue))
            if belief.end > now { checkGrant(of: key, token: token, to: c) }  // else its holder knows it is over
            clients[c].locks[key] = belief
        case (.renewLock(let key, let token, _), .lockRenewed(_, let left)):
            if clients[c].locks[key]?.token == token { clients[c].locks[key]?.end = base + Int(left.rawValue) }
        case (.renewLock(let key, _, _), .error):
            clients[c].locks[key] = nil
        case (.addJob, .jobAdded(let id, _)):
            acknowledgedJobs.insert(id)
        case (.claimJob, .jobClaimed(let job?)):
            let belief = Belief(token: job.token, since: now, end: base + Int(job.leaseLeft.rawValue))
            if belief.end > now { checkClaim(of: job.id, token: job.token, by: c) }
            clients[c].claims[job.id] = belief
        default:
            break
        }
    }

    func leaderHint(_ message: String) -> Int? {
        guard let range = message.range(of: "leader=host") else { return nil }
        return Int(message[range.upperBound...].prefix { $0.isNumber }).map { $0 - 1 }
    }
}
