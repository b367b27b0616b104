import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a three-node cluster, kill -9 its leader again and again, and time each failover.",
        discussion: """
            Starts three `baton serve` processes on loopback (fsync on), keeps one client writing (a \
            job add every millisecond or so, each waited for), and --kills times: finds the leader, \
            kills it with SIGKILL, and measures the time from the kill until a write is acknowledged \
            again. The killed node is restarted and allowed to catch up before the next round. Prints \
            every failover, then the median and the maximum.
            """)

    @Option(help: "Path of the baton executable (default: next to this one).") var baton: String?
    @Option(help: "Leader kills.") var kills = 20
    @Option(help: "First of six consecutive ports (three for clients, three for Raft).") var basePort = 17830
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let executable = baton ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("baton").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-failover-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let members = (0..<3).map { i in
            "{\"nodeID\": \"n\(i + 1)\", \"host\": \"127.0.0.1\", \"port\": \(basePort + i), \"raftPort\": \(basePort + 3 + i)}"
        }
        var configs: [String] = []
        for i in 0..<3 {
            let path = "\(dir)/n\(i + 1).json"
            try """
            {"nodeID": "n\(i + 1)", "port": \(basePort + i), "metricsPort": 0, "dataDirectory": "\(dir)/n\(i + 1)",
             "cluster": [\(members.joined(separator: ", "))]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            configs.append(path)
        }
        var nodes = try configs.map { try launch(executable, config: $0) }
        defer { for n in nodes where n.isRunning { kill(n.processIdentifier, SIGKILL) } }
        let endpoints = (0..<3).map { "127.0.0.1:\(basePort + $0)" }
        var configuration = BatonClient.Configuration(endpoints: endpoints, name: "failover-bench")
        configuration.retryTimeout = .milliseconds(50)
        configuration.requestTimeout = .milliseconds(500)
        let writer = BatonClient(configuration: configuration)

        var failovers: [Duration] = []
        for round in 0..<kills {
            _ = try await writeUntilAcknowledged(writer, timeout: .seconds(30))  // the cluster is up
            try await Task.sleep(for: .milliseconds(500))  // let the restarted node catch up
            guard let leader = await leader(endpoints) else { throw ValidationError("round \(round): no leader") }
            let killedAt = ContinuousClock.now
            kill(nodes[leader].processIdentifier, SIGKILL)
            let back = try await writeUntilAcknowledged(writer, timeout: .seconds(30))
            failovers.append(back - killedAt)
            nodes[leader].waitUntilExit()
            if !json { print("kill \(round + 1): writes acknowledged again after \(format(back - killedAt))") }
            nodes[leader] = try launch(executable, config: configs[leader])
        }
        await writer.shutdown()
        for n in nodes { kill(n.processIdentifier, SIGTERM) }
        for n in nodes { n.waitUntilExit() }
        let sorted = failovers.sorted()
        let median = sorted[sorted.count / 2]
        let maximum = sorted.last!
        if json {
            let ms = failovers.map { Int($0 / .milliseconds(1)) }
            print("{\"kills\": \(kills), \"failoverMilliseconds\": \(ms), \"medianMilliseconds\": \(Int(median / .milliseconds(1))), \"maxMilliseconds\": \(Int(maximum / .milliseconds(1)))}")
        } else {
            print("failover over \(kills) leader kills: median \(format(median)), max \(format(maximum))")
        }
    }

    /// Adds jobs until one is acknowledged; returns when.
    func writeUntilAcknowledged(_ client: BatonClient, timeout: Duration) async throws -> ContinuousClock.Instant {
        let giveUp = ContinuousClock.now + timeout
        while ContinuousClock.now < giveUp {
            do {
                _ = try await client.addJob(JobSpec(type: "failover-bench", payload: [1]))
                return ContinuousClock.now
            } catch {
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        throw ValidationError("no write acknowledged for \(timeout)")
    }

    func leader(_ endpoints: [String]) async -> Int? {
        for (i, endpoint) in endpoints.enumerated() {
            var c = BatonClient.Configuration(endpoints: [endpoint], name: "failover-probe")
            c.retryTimeout = .milliseconds(50)
            let probe = BatonClient(configuration: c)
            let status = try? await probe.nodeStatus()
            await probe.shutdown()
            if status?.role == .leader { return i }
        }
        return nil
    }

    func launch(_ executable: String, config: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", "--config", config, "--log-level", "error"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func format(_ d: Duration) -> String {
        String(format: "%.0f ms", Double(d / .microseconds(1)) / 1000)
    }
}
