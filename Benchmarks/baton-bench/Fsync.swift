import ArgumentParser
import BatonBenchKit

struct Fsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this disk: write + fdatasync of one 128-byte record, from one writer, per second.",
        discussion: """
            Two patterns: appending (every sync also commits a new file size) and overwriting a file filled \
            with zeros beforehand, the way Baton's log segments are written. The larger figure is the \
            disk's fsync rate that group commit is measured against. Each pattern also prints the \
            latency of single write+fdatasync pairs (p50, p99, p99.9, max): a group commit waits for \
            the disk's slowest syncs as well, so the tail of Baton's latency with fsync follows this one.
            """)

    @Option(help: "Directory on the disk to measure.") var dir = "."
    @Option(help: "Seconds to measure each pattern.") var duration: Double = 3
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let append = try FsyncProbe.run(directory: dir, seconds: duration, pattern: .append)
        let preallocated = try FsyncProbe.run(directory: dir, seconds: duration, pattern: .preallocated)
        let best = max(append.syncsPerSecond, preallocated.syncsPerSecond)
        if json {
            print(
                "{\"fsyncsPerSecond\":\(Int(best)),\"appendFsyncsPerSecond\":\(Int(append.syncsPerSecond)),"
                    + "\"preallocatedFsyncsPerSecond\":\(Int(preallocated.syncsPerSecond)),"
                    + "\"appendLatencyMicroseconds\":\(Self.percentilesJSON(append)),"
                    + "\"preallocatedLatencyMicroseconds\":\(Self.percentilesJSON(preallocated))}")
        } else {
            print("fsync: \(Int(best)) write+fdatasync per second (one writer, 128-byte records, \(dir))")
            print("  appending to the file:          \(Int(append.syncsPerSecond))  (\(Self.percentilesText(append)))")
            print("  overwriting preallocated zeros: \(Int(preallocated.syncsPerSecond))  (\(Self.percentilesText(preallocated)))")
        }
    }

    static let percentiles: [(name: String, quantile: Double)] = [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)]

    static func percentilesText(_ result: FsyncProbe.Result) -> String {
        let parts = percentiles.map { "\($0.name) \(result.latency.valueAtPercentile($0.quantile * 100)) us" }
        return (parts + ["max \(result.latency.max) us"]).joined(separator: ", ")
    }

    static func percentilesJSON(_ result: FsyncProbe.Result) -> String {
        let parts = percentiles.map { "\"\($0.name)\":\(result.latency.valueAtPercentile($0.quantile * 100))" }
        return "{" + (parts + ["\"max\":\(result.latency.max)"]).joined(separator: ",") + "}"
    }
}
