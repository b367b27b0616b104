import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fault suite: the three members of `deploy/three-hosts` on hosts of their own (network
/// namespaces), run as an unprivileged user, under a seeded schedule of faults (a nemesis) while a
/// workload records a history; then the checkers read the history. Needs root for the set-up.
///
/// `BATON_FAULT_MINUTES` sets how long the schedule runs (default 5); `BATON_FAULT_SEED` replays
/// one (a failing run prints its seed).
@Suite(.heavy, .timeLimit(.minutes(120))) struct FaultSuiteTests {
    /// Runs `body` with three hosts and the cluster on them, and removes everything afterwards.
    func withCluster(_ body: (HostCluster) async throws -> Void) async throws {
        guard Unprivileged.isRoot else {
            Issue.record("the fault suite creates network namespaces, which needs root (CI runs as root)")
            return
        }
        let hosts = try Hosts.create()
        defer { hosts.destroy() }
        let cluster = try HostCluster(hosts: hosts)
        defer { cluster.destroy() }
        for i in 0..<3 { try cluster.start(i) }
        try await body(cluster)
    }

    /// The premise: three hosts with addresses of their own elect a leader and serve a client on
    /// the fourth, and no host has a route out.
    @Test func threeHostsServeAClientOnAFourth() async throws {
        try await withCluster { cluster in
            let client = cluster.client("smoke")
            guard case .granted = try await client.acquireLock("smoke", ttl: .seconds(5)) else {
                Issue.record("not granted")
                return
            }
            await client.shutdown()
            let statuses = await cluster.statuses()
            #expect(statuses.compactMap { $0 }.count == 3, "\(statuses)")
            #expect(statuses.filter { $0?.role == .leader }.count == 1)
            #expect(Set(statuses.compactMap { $0?.nodeID }) == ["baton-1", "baton-2", "baton-3"])
        }
    }

    /// The replicas agree: at a moment when all three have applied the same index, they hold the
    /// same state (by its summary; whether a lease has run out depends on each one's clock reading).
    func expectReplicasAgree(_ cluster: HostCluster, seed: UInt64) async throws {
        let statuses = try await eventually("seed \(seed): the replicas stand at the same index", timeout: .seconds(30), every: .milliseconds(100)) {
            let statuses = await cluster.statuses().compactMap { $0 }
            return statuses.count == 3 && Set(statuses.map(\.appliedIndex)).count == 1 ? statuses : nil
        }
        let summaries = statuses.map { status -> StateSummary in
            var s = status.summary
            s.locksHeld = 0
            return s
        }
        #expect(Set(summaries).count == 1, "seed \(seed): replicas differ at index \(statuses[0].appliedIndex): \(summaries)")
    }

    @Test func aSeededScheduleOfFaultsBreaksNoPromise() async throws {
        let env = ProcessInfo.processInfo.environment
        let minutes = Double(env["BATON_FAULT_MINUTES"] ?? "") ?? 5
        let seed = UInt64(env["BATON_FAULT_SEED"] ?? "") ?? UInt64.random(in: 1...999_999)
        print("fault suite: seed \(seed), \(minutes) minutes (replay: BATON_FAULT_SEED=\(seed))")
        try await withCluster { cluster in
            let recorder = Recorder()
            let resource = FencedResource()
            let stop = NIOLockedValueBox(false)
            var nemesis = Nemesis(seed: seed, cluster: cluster)
            // Processes 0-3 take locks, 4-5 run jobs, 6-7 hold `fenced` and sometimes stop past
            // their lease, 8-10 read, each from one member and never redirected.
            let clients = (0..<8).map { cluster.client("w\($0)") }
                + (0..<3).map { cluster.client("r\($0)", endpoints: [cluster.endpoints[$0]], retryTimeout: .zero) }
            let workload = Task {
                await withTaskGroup(of: Void.self) { group in
                    for (i, client) in clients.enumerated() {
                        let seed = seed &+ UInt64(i)
                        group.addTask {
                            switch i {
                            case 0..<4: await Workload.locks(client, process: i, recorder: recorder, resource: resource, seed: seed, stop: stop)
                            case 4..<6: await Workload.jobs(client, process: i, recorder: recorder, seed: seed, stop: stop)
                            case 6..<8: await Workload.pausedHolder(client, process: i, recorder: recorder, resource: resource, seed: seed, stop: stop)
                            default: await Workload.reads(client, process: i, recorder: recorder, seed: seed, stop: stop)
                            }
                        }
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(minutes * 60)
            while ContinuousClock.now < deadline {
                try await nemesis.next()
            }
            try await nemesis.healAll()
            stop.withLockedValue { $0 = true }
            await workload.value

            let history = recorder.history
            // Every acknowledged add is still there, asked of the healed cluster.
            let checker = cluster.client("checker")
            var present: Set<JobID> = []
            for op in history.operations {
                if case .added(let id) = op.outcome, (try? await checker.getJob(id)) != nil { present.insert(id) }
            }
            await checker.shutdown()
            for c in clients { await c.shutdown() }
            let violations =
                Checkers.mutualExclusion(history) + Checkers.mutualExclusion(history, count: .clientLibrary)
                + Checkers.fencing(history) + Checkers.fencedWrites(history) + Checkers.clusterClock(history)
                + Checkers.jobs(history, present: present.contains) + Linearizability.check(history)
            print(nemesis.report(history: history))
            let byChecker = Dictionary(grouping: violations, by: \.checker).map { "\($0.key): \($0.value.count)" }.sorted()
            print("violations: \(violations.count) \(byChecker)")
            for v in violations.prefix(20) { print("  \(v)") }
            #expect(violations.isEmpty, "seed \(seed): \(violations.prefix(10).map(\.description).joined(separator: "\n"))")
            #expect(history.operations.filter { $0.token != nil }.count > 20, "seed \(seed): the workload got almost nothing done")
            // The premises of the read and fencing checks: reads answered with a holder, and a paused
            // holder's late write refused because another holder had written since.
            #expect(history.operations.contains { if case .read(_?) = $0.outcome { true } else { false } }, "seed \(seed): no read saw a holder")
            #expect(
                history.operations.contains { if case .write(_, _, true) = $0.call, case .refused = $0.outcome { true } else { false } },
                "seed \(seed): no paused holder's late write was refused")
            cluster.noteExits()
            // The members' logs go with the hosts' directory: show why one exited while they exist.
            let exitLogs = Set(cluster.exitedOnTheirOwn.map(\.member)).sorted().map { i in
                let text = (try? String(contentsOfFile: cluster.log(i), encoding: .utf8)) ?? ""
                return "baton-\(i + 1).log, last lines:\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
            }
            #expect(
                cluster.exitedOnTheirOwn.isEmpty,
                "seed \(seed): members exited without being killed: \(cluster.exitedOnTheirOwn)\n\(exitLogs.joined(separator: "\n"))")
            let snapshots = cluster.snapshotsInstalled()
            print("snapshots installed by members: \(snapshots)")
            #expect(snapshots > 0, "seed \(seed): no member was sent a snapshot; the faults never tested their installation")
            try await expectReplicasAgree(cluster, seed: seed)
        }
    }
}
