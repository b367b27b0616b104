import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Issue 34: snapshots every 100 entries (the least allowed) and 4 KiB log segments, and `kill -9` while they are written,
/// in a loop: during a node's own snapshots, and during the install of a leader's snapshot on a
/// member that fell behind. After every restart the member must start (its snapshot and its log
/// continue each other) and nothing acknowledged may be lost.
@Suite(.heavy, .timeLimit(.minutes(6))) struct SnapshotCrashTests {
    /// Frequent snapshots and small segments, on top of a member's own lines.
    static let snapshotLines = "\"snapshotEveryEntries\": 100, \"segmentSizeBytes\": 4096, \"metricsPort\": 0"

    /// A process of `baton serve` whose output is appended to `log`.
    func launch(config: String, log: String) throws -> Process {
        try launchNode(["serve", "--config", config, "--log-level", "info"], output: .appended(toFile: log))
    }

    /// A directory with a single node's configuration (`snapshotLines`, data in `dir/data`), a free
    /// port, and where its log goes.
    func singleNode() async throws -> (dir: String, port: Int, config: String, log: String) {
        let dir = temporaryDataDirectory()
        try Unprivileged.makeDirectory(dir)
        let port = try await freePort()
        let config = "\(dir)/baton.json"
        try """
            {"nodeID": "n1", "port": \(port), "dataDirectory": "\(dir)/data", \(Self.snapshotLines)}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        Unprivileged.handOver(config)
        return (dir, port, config, "\(dir)/baton.log")
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func killNineDuringItsOwnSnapshotsLosesNothing() async throws {
        let (dir, port, config, log) = try await singleNode()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let acked = NIOLockedValueBox(Acknowledged())
        for round in 0..<10 {
            let process = try launch(config: config, log: log)
            let checker = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "checker"))
            do {
                try await acked.withLockedValue { $0 }.verify(with: checker, round: round)
            } catch {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                Issue.record("round \(round): \(error)\nnode log:\n\(text(log).suffix(3000))")
                throw error
            }
            await checker.shutdown()
            try await loadThenKill(process, port: port, round: round, acked: acked)
            #expect(process.terminationReason == .uncaughtSignal, "round \(round): the node exited on its own:\n\(text(log).suffix(3000))")
        }
        let snapshots = text(log).components(separatedBy: "snapshot written").count - 1
        #expect(snapshots >= 5, "the premise: snapshots were written while the node was killed (\(snapshots))")
        #expect(!text(log).contains("critical"), "\(text(log).suffix(3000))")
    }

    @Test func killNineDuringASnapshotInstallLosesNothing() async throws {
        let base = temporaryDataDirectory()
        try Unprivileged.makeDirectory(base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        var ports: [(client: Int, raft: Int)] = []
        for _ in 0..<3 { ports.append((try await freePort(), try await freePort())) }
        let cluster = (0..<3).map {
            "{\"nodeID\": \"n\($0 + 1)\", \"host\": \"127.0.0.1\", \"port\": \(ports[$0].client), \"raftPort\": \(ports[$0].raft)}"
        }
        let configs = (0..<3).map { "\(base)/n\($0 + 1).json" }
        let logs = (0..<3).map { "\(base)/n\($0 + 1).log" }
        for i in 0..<3 {
            try """
                {"nodeID": "n\(i + 1)", "port": \(ports[i].client), "dataDirectory": "\(base)/data-\(i + 1)", \(Self.snapshotLines),
                 "cluster": [\(cluster.joined(separator: ", "))]}
                """.write(toFile: configs[i], atomically: true, encoding: .utf8)
            Unprivileged.handOver(configs[i])
        }
        var processes = try (0..<3).map { try launch(config: configs[$0], log: logs[$0]) }
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let endpoints = ports.map { "127.0.0.1:\($0.client)" }
        let acked = NIOLockedValueBox(Acknowledged())
        let workload = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<3 {
                    group.addTask {
                        await load(port: 0, round: 0, worker: worker, acked: acked, endpoints: endpoints, retryTimeout: .seconds(10))
                    }
                }
            }
        }
        defer { workload.cancel() }
        func status(_ i: Int) async -> NodeStatus? {
            var c = BatonClient.Configuration(endpoints: [endpoints[i]], name: "probe")
            c.retryTimeout = .milliseconds(100)
            c.requestTimeout = .milliseconds(500)
            let client = BatonClient(configuration: c)
            let status = try? await client.nodeStatus()
            await client.shutdown()
            return status
        }
        /// Waits until the load acknowledged `more` jobs.
        func progress(_ more: Int, _ round: Int) async throws {
            let target = acked.withLockedValue { $0.jobs.count } + more
            try await eventually("round \(round): progress", timeout: .seconds(90), every: .milliseconds(20)) {
                acked.withLockedValue { $0.jobs.count } >= target
            }
        }
        try await progress(20, -1)
        for round in 0..<6 {
            var follower: Int?
            for i in 0..<3 where await status(i)?.role == .follower { follower = i }
            let f = try #require(follower, "round \(round): no member follows")
            kill(processes[f].processIdentifier, SIGKILL)
            processes[f].waitUntilExit()
            // The others go on and compact their logs past what the killed member has.
            try await progress(60, round)
            processes[f] = try launch(config: configs[f], log: logs[f])
            // Killed again while the leader's snapshot may be on its way to its disk.
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...300)))
            kill(processes[f].processIdentifier, SIGKILL)
            processes[f].waitUntilExit()
            processes[f] = try launch(config: configs[f], log: logs[f])
            // It starts and catches up.
            let others = (0..<3).filter { $0 != f }
            let target = await others.asyncMap { await status($0)?.appliedIndex ?? 0 }.max() ?? 0
            let member = processes[f]
            try await eventually("round \(round): n\(f + 1) catches up to \(target)", timeout: .seconds(90)) {
                try #require(member.isRunning, "round \(round): member n\(f + 1) exited (\(member.terminationStatus)):\n\(text(logs[f]).suffix(3000))")
                return (await status(f)?.appliedIndex ?? 0) >= target
            }
        }
        workload.cancel()
        await workload.value
        let installs = logs.map { text($0).components(separatedBy: "installed the leader's snapshot").count - 1 }.reduce(0, +)
        #expect(installs > 0, "the premise: members installed their leader's snapshot")
        var c = BatonClient.Configuration(endpoints: endpoints, name: "checker")
        c.retryTimeout = .seconds(10)
        let checker = BatonClient(configuration: c)
        try await acked.withLockedValue { $0 }.verify(with: checker, round: 99)
        await checker.shutdown()
        for log in logs { #expect(!text(log).contains("critical"), "\(text(log).suffix(3000))") }
    }

    /// A member that cannot write its log stops serving and exits non-zero, so that its supervisor
    /// (systemd's `Restart=on-failure`) restarts it, and says what failed. Before, the process stayed
    /// up, answering nothing.
    @Test func aNodeThatCannotWriteItsLogExitsNonZero() async throws {
        let (dir, port, config, log) = try await singleNode()
        defer {
            chmod("\(dir)/data/wal", 0o755)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let process = try launch(config: config, log: log)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "writer"))
        _ = try await client.addJob(JobSpec(type: "t"))
        // No new segment can be made now: the log fills its 4 KiB one and cannot go on.
        #expect(chmod("\(dir)/data/wal", 0o500) == 0)
        for _ in 0..<2_000 {
            guard process.isRunning else { break }
            _ = try? await client.addJob(JobSpec(type: "t", payload: [UInt8](repeating: 1, count: 512)))
        }
        await client.shutdown()
        // The old build stayed up for good.
        try await eventually("the node exits after its log write failed") { !process.isRunning }
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus != 0)
        #expect(text(log).contains("log write failed"), "\(text(log).suffix(2000))")
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var out: [T] = []
        for e in self { out.append(await transform(e)) }
        return out
    }
}
