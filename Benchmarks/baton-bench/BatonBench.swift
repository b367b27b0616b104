import ArgumentParser
import BatonBenchKit

@main
struct BatonBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-bench",
        abstract: "Benchmarks for Baton and its peers.",
        subcommands: [Load.self, Batches.self, Fsync.self, Recovery.self, Failover.self, Schedules.self],
        defaultSubcommand: Load.self)
}

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load generator for Baton and its peers: throughput and latency percentiles.",
        discussion: """
            Each connection keeps --pipeline cycles in flight; each cycle is a closed loop of requests:
              lock            acquire a random key of --keys, release it (busy: a miss)
              lock-contended  every client on one key; Baton queues, Redis retries
              job             add, claim, complete (beanstalkd: put, reserve, delete)
              renew           each slot holds its own lock and renews it

            Targets: baton (all workloads), redis (lock, lock-contended, renew), beanstalkd (job). \
            Latency is per cycle, recorded in an HdrHistogram after --warmup.

            A Baton cluster member that does not lead answers NOT_LEADER: the connection is reopened \
            at the leader it names (counted as redirects), so any member will do as --endpoint; \
            cycles cut short by a leader change are not counted.
            """)

    @Option(help: "Target system: baton, redis, beanstalkd.") var target: String = "baton"
    @Option(help: "Workload: lock, lock-contended, job, renew.") var workload: String = "lock"
    @Option(help: "Address of the target, host:port (default port by target); for a Baton cluster, any member.") var endpoint: String?
    @Option(help: "Connections (clients).") var connections = 16
    @Option(help: "Cycles in flight per connection.") var pipeline = 1
    @Option(help: "Keys for the lock workload.") var keys = 10_000
    @Option(help: "Seconds to measure.") var duration: Double = 5
    @Option(help: "Seconds to run before measuring.") var warmup: Double = 1
    @Option(help: "Load-generator threads.") var threads = 1
    @Option(help: "TLS to the target, trusting this CA file (PEM).") var cacert: String?
    @Option(help: "Baton: the bearer token to authenticate with (AUTH after HELLO).") var token: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        var config = BenchmarkConfiguration()
        guard let t = Target(rawValue: target) else { throw ValidationError("unknown target '\(target)'") }
        guard let w = Workload(rawValue: workload) else { throw ValidationError("unknown workload '\(workload)'") }
        guard t.workloads.contains(w) else {
            throw ValidationError("the \(t.rawValue) target has no \(w.rawValue) workload (it has: \(t.workloads.map(\.rawValue).joined(separator: ", ")))")
        }
        config.target = t
        config.workload = w
        if let endpoint {
            let parts = endpoint.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("endpoint must be host:port") }
            config.host = String(parts[0])
            config.port = port
        }
        guard connections > 0, pipeline > 0, duration > 0, warmup >= 0 else {
            throw ValidationError("connections, pipeline and duration must be positive")
        }
        config.connections = connections
        config.pipeline = pipeline
        config.keys = keys
        config.duration = .milliseconds(Int64(duration * 1000))
        config.warmup = .milliseconds(Int64(warmup * 1000))
        config.threads = threads
        config.caFile = cacert
        config.token = token
        let report = try await runBenchmark(config)
        print(json ? report.json : report.text)
        if report.cycles == 0 { throw ExitCode(1) }
    }
}
