import ArgumentParser
import BatonBenchKit
import Foundation

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
            let report = JSONReport(
                fsyncsPerSecond: Int(best), appendFsyncsPerSecond: Int(append.syncsPerSecond),
                preallocatedFsyncsPerSecond: Int(preallocated.syncsPerSecond),
                appendLatencyMicroseconds: Report.Percentiles(append.latency),
                preallocatedLatencyMicroseconds: Report.Percentiles(preallocated.latency))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("fsync: \(Int(best)) write+fdatasync per second (one writer, 128-byte records, \(dir))")
            print("  appending to the file:          \(Int(append.syncsPerSecond))  (\(Self.text(append)))")
            print("  overwriting preallocated zeros: \(Int(preallocated.syncsPerSecond))  (\(Self.text(preallocated)))")
        }
    }

    struct JSONReport: Encodable {
        var fsyncsPerSecond: Int
        var appendFsyncsPerSecond: Int
        var preallocatedFsyncsPerSecond: Int
        var appendLatencyMicroseconds: Report.Percentiles
        var preallocatedLatencyMicroseconds: Report.Percentiles
    }

    static func text(_ result: FsyncProbe.Result) -> String {
        let l = Report.Percentiles(result.latency)
        return "p50 \(l.p50) us, p99 \(l.p99) us, p99.9 \(l.p999) us, max \(l.max) us"
    }
}
