import BatonClientCore
import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// The invariants, checked after every simulated millisecond and at the end.
extension NodeSimulation {
    // MARK: - Invariants

    /// Client `c` works under a lock (a grant, a confirmed late grant, a renewal): nobody else may
    /// work under it with another token, each counting by the library's `LeaseClock`.
    mutating func checkGrant(of key: String, token: FencingToken, to c: Int) {
        for other in clients.indices where other != c {
            if let holding = clients[other].locks[key], holding.works(at: now), holding.token != token {
                fail("\(key) granted to client \(c) (token \(token)) while client \(other) counts token \(holding.token) until \(holding.clock.stopAt)")
            }
        }
    }

    mutating func checkClaim(of job: JobID, token: FencingToken, by c: Int) {
        for other in clients.indices where other != c {
            if let holding = clients[other].claims[job], holding.works(at: now), holding.token != token {
                fail("job \(job) claimed by client \(c) while client \(other) counts its claim until \(holding.clock.stopAt)")
            }
        }
    }

    /// A read that shows a lock free, or held under another token, was not answered while a holder
    /// that began to work under it before the read was asked still works.
    mutating func checkRead(_ query: Query, _ reply: Reply, askedAt: Int) {
        guard case .getLock(let key) = query, case .lock(let info) = reply else {
            fail("a read \(query) asked at \(askedAt) was answered \(reply)")  // the clients only read locks
            return
        }
        for c in clients.indices {
            guard let holding = clients[c].locks[key], let since = holding.since, since < askedAt, holding.works(at: now) else { continue }
            if info?.token != holding.token {
                fail("a read of \(key) asked at \(askedAt) showed \(info.map { "token \($0.token)" } ?? "no holder") while client \(c) counts token \(holding.token) until \(holding.clock.stopAt)")
            }
        }
    }

    /// Every answer to one command is the same, however often it is sent (lease counts aside).
    mutating func observe(_ reply: Reply, for c: Int, attempt: Int) {
        guard let out = clients[c].outstanding, out.command != nil, out.attempts.contains(where: { $0.serial == attempt }) else { return }
        if case .error(let e) = reply, e.code.isRetriable { return }
        let key = WaitKey(clientID: clients[c].id, sequence: out.sequence)
        let normal = reply.sent(at: Timestamp(milliseconds: 0))
        if let first = answers[key] {
            if first != normal { fail("client \(c) sequence \(out.sequence) answered \(normal), earlier \(first)") }
        } else {
            answers[key] = normal
        }
    }

    mutating func checkInvariants() {
        for i in hosts.indices where hosts[i].up {
            let node = hosts[i].node
            if node.raft.isLeader {
                if let other = leaders[node.raft.term], other != node.raft.id {
                    fail("two leaders in term \(node.raft.term): \(other) and \(node.raft.id)")
                }
                if leaders[node.raft.term] == nil {
                    leaders[node.raft.term] = node.raft.id
                    elections += 1
                    // Leader completeness (Raft §5.4): a leader holds every entry committed in an
                    // earlier term. A leader of an older term may still take office late (its votes
                    // were slow to arrive) and lack what a newer leader committed since.
                    for (index, known) in appliedEntries where index > node.raft.snapshotIndex && known.committedBy < node.raft.term {
                        if node.raft.term(at: index) != known.term {
                            fail("leader \(node.raft.id) of term \(node.raft.term) lacks applied entry \(index)")
                        }
                    }
                }
            }
            recordApplied(on: i)
        }
    }


    mutating func recordApplied(on i: Int) {
        let node = hosts[i].node
        var index = max(seenApplied[i] ?? .zero, node.raft.snapshotIndex)
        if node.appliedIndex < index { index = node.appliedIndex }  // restarted from its disk
        while index < node.appliedIndex {
            index = index.advanced(by: 1)
            guard let entry = node.raft.entry(at: index) else { continue }
            if let known = appliedEntries[index] {
                if known.term != entry.term || known.data != entry.data {
                    fail("index \(index) applied as term \(entry.term) on host \(i + 1), as term \(known.term) elsewhere")
                }
                continue
            }
            appliedEntries[index] = (entry.term, entry.data, node.raft.term)
            trace(.applied, index.rawValue &* 131 &+ entry.term.rawValue)
            guard !entry.data.isEmpty, let timed = try? TimedInput.decode(entry.data),
                let proposed = proposedAt[index]?[entry.term]
            else { continue }
            checkClock(stamp: timed.time.milliseconds, proposed: proposed, term: entry.term, index: index)
        }
        seenApplied[i] = node.appliedIndex
    }

    /// The lag of the cluster's time behind real time (proposal time minus stamp) never shrinks, does
    /// not grow under one leader, and grows across a failover by no more than the leaderless gap.
    mutating func checkClock(stamp: UInt64, proposed: Int, term: Term, index: LogIndex) {
        defer { lastCommittedStamp = (proposed, stamp, term) }
        guard let last = lastCommittedStamp else { return }
        let lag = Int64(proposed) - Int64(stamp)
        let lastLag = Int64(last.proposed) - Int64(last.stamp)
        if lag < lastLag {
            fail("the cluster's time gained \(lastLag - lag) ms on real time at index \(index) (term \(term)): a lease ends early")
        } else if term == last.term, lag != lastLag {
            fail("under one leader (term \(term)) the cluster's time fell \(lag - lastLag) ms behind real time at index \(index)")
        } else if term != last.term, let office = tookOffice[term], lag - lastLag > Int64(office - last.proposed) {
            fail("a failover added \(lag - lastLag) ms to leases at index \(index), more than the leaderless gap of \(office - last.proposed) ms")
        }
    }

    /// After healing: a leader, every host caught up, every acknowledged job present everywhere.
    mutating func checkFinalState() {
        guard let leader = hosts.firstIndex(where: { $0.up && $0.node.isLeader }) else {
            fail("no leader \(options.milliseconds - options.healAfter) ms after healing")
            return
        }
        for i in hosts.indices where hosts[i].node.appliedIndex != hosts[leader].node.raft.commit {
            fail("host \(i + 1) applied \(hosts[i].node.appliedIndex), the leader committed \(hosts[leader].node.raft.commit), 2 s after the clients stopped")
            return
        }
        if let spec = options.schedule { checkSchedule(spec, on: hosts[leader].node.machine) }
        for i in hosts.indices {
            for job in acknowledgedJobs {
                guard case .job = hosts[i].node.machine.query(.getJob(job)) else {
                    fail("acknowledged job \(job) missing on host \(i + 1)")
                    return
                }
            }
        }
    }
}
