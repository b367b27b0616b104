import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct Schedules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a three-node cluster, put many schedules, and measure their fire lag and the leader's CPU.",
        discussion: """
            Starts three `baton serve` processes on loopback (fsync on, metrics on), measures the \
            leader's CPU with nothing to do for --idle seconds, puts --count schedules firing every \
            --every-ms with --overlap, waits --warmup \
            seconds, then measures for --seconds: the leader's CPU (user+system, from /proc), and \
            the lag from each slot's time to its job being applied on the leader, from the leader's \
            baton_schedule_fire_lag_seconds histogram (differenced over the window). Percentiles \
            are the upper bounds of their histogram buckets. Also counts fires, skips and misses.
            """)

    @Option(help: "Path of the baton executable (default: next to this one).") var baton: String?
    @Option(help: "Schedules.") var count = 10_000
    @Option(help: "Each schedule's interval, in milliseconds.") var everyMs: UInt32 = 1_000
    @Option(help: "Each schedule's jitter, in milliseconds.") var jitterMs: UInt32 = 0
    @Option(help: "Overlap policy: skip (no worker takes the jobs, so each schedule adds one job and skips every later slot) or allow (every slot adds a job: the state grows by --count jobs a second).")
    var overlap: OverlapPolicy = .skip
    @Option(help: "Seconds of idle CPU measured before the schedules are put.") var idle = 5
    @Option(help: "Seconds before the measurement.") var warmup = 5
    @Option(help: "Seconds measured.") var seconds = 20
    @Option(help: "First of nine consecutive ports (clients, Raft, metrics).") var basePort = 17850
    @Option(help: "Keep each member's log (at info) in this directory.") var logs: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let executable = baton ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("baton").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-schedules-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let members = (0..<3).map { i in
            "{\"nodeID\": \"n\(i + 1)\", \"host\": \"127.0.0.1\", \"port\": \(basePort + i), \"raftPort\": \(basePort + 3 + i)}"
        }
        var nodes: [Process] = []
        defer { for n in nodes where n.isRunning { kill(n.processIdentifier, SIGKILL) } }
        for i in 0..<3 {
            let path = "\(dir)/n\(i + 1).json"
            try """
            {"nodeID": "n\(i + 1)", "port": \(basePort + i), "metricsPort": \(basePort + 6 + i), "dataDirectory": "\(dir)/n\(i + 1)",
             "cluster": [\(members.joined(separator: ", "))]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            if let logs {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = ["serve", "--config", path, "--log-level", "info"]
                _ = FileManager.default.createFile(atPath: "\(logs)/n\(i + 1).log", contents: nil)
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle(forWritingAtPath: "\(logs)/n\(i + 1).log")
                try process.run()
                nodes.append(process)
            } else {
                nodes.append(try Failover().launch(executable, config: path))
            }
        }
        let endpoints = (0..<3).map { "127.0.0.1:\(basePort + $0)" }
        var configuration = BatonClient.Configuration(endpoints: endpoints, name: "schedules-bench")
        configuration.retryTimeout = .seconds(30)
        let client = BatonClient(configuration: configuration)
        defer { Task { await client.shutdown() } }
        _ = try await client.listSchedules(limit: 1)  // the cluster is up
        guard let leader = await Failover().leader(endpoints) else { throw ValidationError("no leader") }
        let pid = nodes[leader].processIdentifier

        let idleCPU = try await cpuShare(pid, for: idle)
        let putStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for start in stride(from: 0, to: count, by: 500) {
                group.addTask {
                    for i in start..<min(start + 500, count) {
                        try await client.putSchedule(
                            ScheduleSpec(
                                name: "bench-\(i)", every: Milliseconds(everyMs), jitter: Milliseconds(jitterMs),
                                job: JobSpec(type: "bench-scheduled"), overlap: overlap))
                    }
                }
            }
            try await group.waitForAll()
        }
        let putTime = ContinuousClock.now - putStart
        try await Task.sleep(for: .seconds(warmup))
        // Every member: each fire is counted by the member that led when it was applied.
        let metrics = (0..<3).map { "http://127.0.0.1:\(basePort + 6 + $0)/metrics" }
        let before = try await scrape(metrics)
        let windowStart = ContinuousClock.now
        let busyCPU = try await cpuShare(pid, for: seconds)
        let after = try await scrape(metrics)
        // From the end of one scrape to the end of the other: about the window the counts cover.
        let window = Double((ContinuousClock.now - windowStart) / .milliseconds(1)) / 1000
        if after.term != before.term {
            print("note: the term moved from \(before.term) to \(after.term) during the run (a leader election)")
        }

        let buckets = after.buckets.map { a in (a.le, a.count - (before.buckets.first { b in b.le == a.le }?.count ?? 0)) }
        let total = buckets.last?.1 ?? 0
        func percentile(_ p: Double) -> Double {
            let want = Double(total) * p
            return buckets.first { Double($0.1) >= want }?.0 ?? .infinity
        }
        let maxBucket = buckets.first { $0.1 == total }?.0 ?? .infinity
        let fires = after.fires - before.fires
        let missed = after.missed - before.missed
        let skipped = after.skipped - before.skipped
        let expected = Double(count) * window * 1000 / Double(everyMs)
        func ms(_ s: Double) -> String { s.isInfinite ? "+Inf" : String(format: "%g ms", s * 1000) }
        if json {
            print(
                "{\"schedules\": \(count), \"overlap\": \"\(overlap)\", \"everyMs\": \(everyMs), \"seconds\": \(seconds), \"putSeconds\": \(String(format: "%.2f", Double(putTime / .milliseconds(1)) / 1000)), \"fires\": \(fires), \"skipped\": \(skipped), \"missed\": \(missed), \"slotsExpected\": \(Int(expected)), \"lagP50Ms\": \(percentile(0.5) * 1000), \"lagP99Ms\": \(percentile(0.99) * 1000), \"lagMaxMs\": \(maxBucket * 1000), \"leaderCPUPercent\": \(String(format: "%.1f", busyCPU * 100)), \"leaderIdleCPUPercent\": \(String(format: "%.1f", idleCPU * 100))}"
            )
        } else {
            print("\(count) schedules every \(everyMs) ms, overlap \(overlap), on three nodes (fsync on); put in \(putTime)")
            print(String(format: "over %.1f s: %d slots fired, %d skipped, %d missed (about %d slots came)", window, fires, skipped, missed, Int(expected)))
            print("fire lag, slot to job applied on the leader (bucket upper bounds): p50 ≤ \(ms(percentile(0.5))), p99 ≤ \(ms(percentile(0.99))), max ≤ \(ms(maxBucket))")
            print(String(format: "leader CPU: %.1f %% of a core with the schedules, %.1f %% idle before them", busyCPU * 100, idleCPU * 100))
        }
        for n in nodes { kill(n.processIdentifier, SIGTERM) }
        for n in nodes { n.waitUntilExit() }
    }

    /// The share of one core process `pid` used over the next `seconds` (user + system, from /proc).
    func cpuShare(_ pid: Int32, for seconds: Int) async throws -> Double {
        func ticks() throws -> Double {
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
            let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
            return Double(fields[11])! + Double(fields[12])!
        }
        let start = (try ticks(), ContinuousClock.now)
        try await Task.sleep(for: .seconds(seconds))
        let used = try ticks() - start.0
        let wall = Double((ContinuousClock.now - start.1) / .milliseconds(1)) / 1000
        return used / Double(sysconf(Int32(_SC_CLK_TCK))) / wall
    }

    struct Scrape {
        /// Cumulative counts of the lag histogram, by upper bound in seconds.
        var buckets: [(le: Double, count: Int)] = []
        var fires = 0
        var skipped = 0
        var missed = 0
        /// The highest Raft term any member reports.
        var term = 0
    }

    /// The members' metrics: the lag histogram summed (each fire is observed by the member that
    /// led when it was applied), the counts of the member furthest ahead (every member counts the
    /// whole cluster's, from its replicated state).
    func scrape(_ urls: [String]) async throws -> Scrape {
        var s = Scrape()
        var buckets: [Double: Int] = [:]
        for url in urls {
            let (data, _) = try await URLSession.shared.data(from: URL(string: url)!)
            var member = Scrape()
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                add(line, value, to: &member, buckets: &buckets)
            }
            if member.fires + member.skipped + member.missed > s.fires + s.skipped + s.missed {
                (s.fires, s.skipped, s.missed) = (member.fires, member.skipped, member.missed)
            }
            s.term = max(s.term, member.term)
        }
        s.buckets = buckets.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return s
    }

    func add(_ line: Substring, _ value: Double, to s: inout Scrape, buckets: inout [Double: Int]) {
            if line.hasPrefix("baton_schedule_fire_lag_seconds_bucket"), let le = line.range(of: "le=\"") {
                let bound = line[le.upperBound...].prefix { $0 != "\"" }
                buckets[bound == "+Inf" ? .infinity : Double(bound)!, default: 0] += Int(value)
            } else if line.hasPrefix("baton_raft_term") {
                s.term = max(s.term, Int(value))
            } else if line.hasPrefix("baton_schedule_fires_total") {
                s.fires += Int(value)
            } else if line.hasPrefix("baton_schedule_skipped_total") {
                s.skipped += Int(value)
            } else if line.hasPrefix("baton_schedule_missed_total") {
                s.missed += Int(value)
            }
    }
}

extension OverlapPolicy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let p = OverlapPolicy.allCases.first(where: { $0.description == argument }) else { return nil }
        self = p
    }
}
