import BatonClient
import BatonProtocol
import BatonTestSupport
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
/// The history of the lock operations is checked (`Checkers`): no holder is told of a grant while
/// the previous holder still counts its lease (its send plus its answer's `lease_left`) and has not
/// released; fencing tokens grow; and the cluster's time read from the lease answers (the node's
/// time when it sent each) never gains on real time between two answers. The machine's monotonic
/// clock, shared with the nodes, is the real time.
@Suite(.heavy, .timeLimit(.minutes(10))) struct FailoverLeaseTests {
    static let rounds = 30

    @Test func aPausedLeaderThatReturnsGrantsNoLeaseEarly() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        var processes = try members.map(TestCluster.launch)
        defer {
            for p in processes where p.isRunning {
                kill(p.processIdentifier, SIGCONT)
                kill(p.processIdentifier, SIGKILL)
            }
        }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        let recorder = Recorder()

        for round in 0..<Self.rounds {
            let old = try await TestCluster.waitForLeader(members)
            try await TestCluster.waitUntilSettled(members)
            kill(processes[old].processIdentifier, SIGSTOP)
            let others = members.indices.filter { $0 != old }
            let interim = try await TestCluster.waitForLeader(members, among: others)
            let third = others.first { $0 != interim }!
            let key = "m-\(round)"
            let holder = client("holder", [endpoints[interim]])
            let waiter = client("waiter", [endpoints[interim], endpoints[third], endpoints[old]])

            guard case .granted = await recorder.acquire(holder, process: 2 * round, key: key, ttl: .seconds(1)) else {
                Issue.record("round \(round): the holder was not granted \(key)")
                return
            }
            let waiting = Task { await recorder.acquire(waiter, process: 2 * round + 1, key: key, ttl: .seconds(1), wait: .seconds(4)) }
            try await holder.waitForWaiters(1, on: key)

            kill(processes[old].processIdentifier, SIGCONT)
            try await Task.sleep(for: .milliseconds(Int64.random(in: 0...60)))
            kill(processes[interim].processIdentifier, SIGKILL)
            processes[interim].waitUntilExit()

            guard case .granted = await waiting.value else {
                Issue.record("round \(round): the waiter was not granted \(key)")
                return
            }
            // One more answer from whoever leads now.
            await recorder.acquire(waiter, process: 2 * round + 1, key: "probe-\(round)", ttl: .seconds(1))
            await holder.shutdown()
            await waiter.shutdown()
            processes[interim] = try TestCluster.launch(members[interim])
        }

        let history = recorder.history
        let violations =
            Checkers.mutualExclusion(history) + Checkers.mutualExclusion(history, count: .clientLibrary)
            + Checkers.fencing(history) + Checkers.clusterClock(history)
        let granted = history.operations.filter { $0.token != nil }.count
        let byChecker = Dictionary(grouping: violations, by: \.checker).map { "\($0.key): \($0.value.count)" }.sorted()
        print("failover leases: \(Self.rounds) rounds, \(granted) grants, \(violations.count) violations \(byChecker)")
        for v in violations.prefix(20) { print("  \(v)") }
        #expect(granted == 3 * Self.rounds)
        #expect(violations.isEmpty, "\(violations.prefix(10).map(\.description).joined(separator: "\n"))")
    }

    func client(_ name: String, _ endpoints: [String]) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: endpoints, name: name)
        c.retryTimeout = .seconds(10)
        c.requestTimeout = .seconds(2)
        return BatonClient(configuration: c)
    }
}
