import BatonClient
import BatonProtocol
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fault that broke the lease promise (issue 16), replayed against three real `baton serve`
/// processes run as an unprivileged user, round after round:
///
/// 1. pause the leader (SIGSTOP) until another member leads;
/// 2. a holder takes a lock from that interim leader (TTL 1 s, never renewed) and a waiter queues;
/// 3. resume the old leader and kill the interim leader (SIGKILL) 0-60 ms later;
/// 4. the waiter is granted the lock by whoever leads next.
///
/// Checked on this machine's monotonic clock, which the nodes share: the waiter never receives its
/// grant before the holder's lease could end as the holder counts it (its send plus the `lease_left`
/// of its answer), and the cluster's time read from the lease answers (`expires_at − lease_left`: the
/// node's time when it sent the answer) never gains on real time between two answers.
@Suite(.timeLimit(.minutes(10))) struct FailoverLeaseTests {
    /// What one lease answer tells: when the request went out, when the answer came back, and the
    /// node's time when it sent the answer.
    struct Reading {
        var sent: ContinuousClock.Instant
        var received: ContinuousClock.Instant
        var clusterTime: UInt64
    }

    static let rounds = 30

    @Test func aPausedLeaderThatReturnsGrantsNoLeaseEarly() async throws {
        let cluster = ClusterTests()
        let members = try await cluster.writeConfigs()
        defer { for m in members { try? FileManager.default.removeItem(atPath: m.directory); try? FileManager.default.removeItem(atPath: m.config) } }
        var processes = try members.map(cluster.launch)
        defer {
            for p in processes where p.isRunning {
                kill(p.processIdentifier, SIGCONT)
                kill(p.processIdentifier, SIGKILL)
            }
        }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        var readings: [Reading] = []
        var earlyGrants: [String] = []
        var smallestMargin = Duration.seconds(3600)

        for round in 0..<Self.rounds {
            guard let old = await waitForLeader(among: Array(members.indices), cluster, members) else {
                Issue.record("round \(round): no leader")
                return
            }
            try await waitUntilAllAnswer(members)
            kill(processes[old].processIdentifier, SIGSTOP)
            let others = members.indices.filter { $0 != old }
            guard let interim = await waitForLeader(among: others, cluster, members) else {
                kill(processes[old].processIdentifier, SIGCONT)
                Issue.record("round \(round): no interim leader while \(members[old].id) was paused")
                return
            }
            let third = others.first { $0 != interim }!
            let key = "m-\(round)"
            let holder = client("holder", [endpoints[interim]])
            let waiter = client("waiter", [endpoints[interim], endpoints[third], endpoints[old]])

            let holderSent = ContinuousClock.now
            guard case .granted(_, let holderExpires, let holderLeft) = try await holder.acquireLock(key, ttl: .seconds(1)) else {
                Issue.record("round \(round): the holder was not granted \(key)")
                return
            }
            readings.append(Reading(sent: holderSent, received: .now, clusterTime: holderExpires.milliseconds - UInt64(holderLeft.rawValue)))
            let holderBelief = holderSent + holderLeft.duration

            let waiterSent = ContinuousClock.now
            let waiting = Task { try await waiter.acquireLock(key, ttl: .seconds(1), wait: .seconds(4)) }
            var queued = false
            for _ in 0..<200 where !queued {
                queued = (try? await holder.getLock(key))?.waiters.count == 1
                if !queued { try await Task.sleep(for: .milliseconds(2)) }
            }
            #expect(queued, "round \(round): the waiter never queued")

            kill(processes[old].processIdentifier, SIGCONT)
            try await Task.sleep(for: .milliseconds(Int64.random(in: 0...60)))
            kill(processes[interim].processIdentifier, SIGKILL)
            processes[interim].waitUntilExit()

            let result = await waiting.result
            let waiterReceived = ContinuousClock.now
            guard case .success(.granted(_, let waiterExpires, let waiterLeft)) = result else {
                Issue.record("round \(round): the waiter was not granted \(key): \(result)")
                return
            }
            readings.append(Reading(sent: waiterSent, received: waiterReceived, clusterTime: waiterExpires.milliseconds - UInt64(waiterLeft.rawValue)))
            let margin = waiterReceived - holderBelief
            smallestMargin = min(smallestMargin, margin)
            if margin < .zero {
                earlyGrants.append("round \(round): the waiter was granted \(Duration.zero - margin) before the holder's lease ended as the holder counted it")
            }
            // One more reading from whoever leads now.
            let probeSent = ContinuousClock.now
            if case .granted(_, let probeExpires, let probeLeft) = try await waiter.acquireLock("probe-\(round)", ttl: .seconds(1)) {
                readings.append(Reading(sent: probeSent, received: .now, clusterTime: probeExpires.milliseconds - UInt64(probeLeft.rawValue)))
            }
            await holder.shutdown()
            await waiter.shutdown()
            processes[interim] = try cluster.launch(members[interim])
        }

        // The cluster's time never gained on real time: between the sending of answer i and of a
        // later answer j, it advanced no more than the real time from i's request to j's answer.
        var largestGain: Int64 = .min
        var gains: [String] = []
        for (i, a) in readings.enumerated() {
            for b in readings[(i + 1)...] where b.sent >= a.sent {
                let real = b.received - a.sent
                let realMs = real.components.seconds * 1000 + real.components.attoseconds / 1_000_000_000_000_000
                let gain = Int64(b.clusterTime) - Int64(a.clusterTime) - realMs
                largestGain = max(largestGain, gain)
                if gain > 0 { gains.append("the cluster's time gained \(gain) ms between answers \(a) and \(b)") }
            }
        }
        print(
            "failover leases: \(Self.rounds) rounds, \(earlyGrants.count) early grants (smallest margin \(smallestMargin)), "
                + "\(gains.count) clock gains (largest \(largestGain) ms) over \(readings.count) answers")
        #expect(readings.count >= 2 * Self.rounds)
        #expect(earlyGrants.isEmpty, "\(earlyGrants.joined(separator: "\n"))")
        #expect(gains.isEmpty, "\(gains.prefix(10).joined(separator: "\n"))")
    }

    func client(_ name: String, _ endpoints: [String]) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: endpoints, name: name)
        c.retryTimeout = .seconds(10)
        c.requestTimeout = .seconds(2)
        return BatonClient(configuration: c)
    }

    /// The member among `candidates` that says it leads, once one does (up to 10 s).
    func waitForLeader(among candidates: [Int], _ cluster: ClusterTests, _ members: [ClusterTests.Member]) async -> Int? {
        for _ in 0..<100 {
            if let i = await cluster.leader(candidates.map { members[$0] }) { return candidates[i] }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Waits until every member answers and none lags its leader (a restarted member has caught up).
    func waitUntilAllAnswer(_ members: [ClusterTests.Member]) async throws {
        for _ in 0..<200 {
            var statuses: [NodeStatus] = []
            for m in members {
                var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(m.port)"], name: "probe")
                c.retryTimeout = .milliseconds(100)
                c.requestTimeout = .milliseconds(300)
                let probe = BatonClient(configuration: c)
                if let s = try? await probe.nodeStatus() { statuses.append(s) }
                await probe.shutdown()
            }
            let leaders = statuses.filter { $0.role == .leader }
            if statuses.count == members.count, leaders.count == 1,
                statuses.allSatisfy({ $0.term == leaders[0].term && $0.appliedIndex + 5 >= leaders[0].commitIndex })
            {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the members never all answered with one leader")
    }
}
