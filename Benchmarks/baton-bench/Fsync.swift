import ArgumentParser
import BatonBenchKit

struct Fsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this disk: write + fdatasync of one 128-byte record, from one writer, per second.",
        discussion: """
            Two patterns: appending (every sync also commits a new file size) and overwriting a file filled \
            with zeros beforehand, the way Baton's log segments are written. The larger figure is the \
            disk's fsync rate that group commit is measured against.
            """)

    @Option(help: "Directory on the disk to measure.") var dir = "."
    @Option(help: "Seconds to measure each pattern.") var duration: Double = 3
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let append = try FsyncProbe.run(directory: dir, seconds: duration, pattern: .append)
        let preallocated = try FsyncProbe.run(directory: dir, seconds: duration, pattern: .preallocated)
        let best = max(append, preallocated)
        if json {
            print("{\"fsyncsPerSecond\":\(Int(best)),\"appendFsyncsPerSecond\":\(Int(append)),\"preallocatedFsyncsPerSecond\":\(Int(preallocated))}")
        } else {
            print("fsync: \(Int(best)) write+fdatasync per second (one writer, 128-byte records, \(dir))")
            print("  appending to the file:          \(Int(append))")
            print("  overwriting preallocated zeros: \(Int(preallocated))")
        }
    }
}
