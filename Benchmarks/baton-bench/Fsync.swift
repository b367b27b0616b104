import ArgumentParser
import BatonBenchKit

struct Fsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this disk: write + fdatasync of one 128-byte record, from one writer, per second.")

    @Option(help: "Directory on the disk to measure.") var dir = "."
    @Option(help: "Seconds to measure.") var duration: Double = 3
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let rate = try FsyncProbe.run(directory: dir, seconds: duration)
        print(json ? "{\"fsyncsPerSecond\":\(Int(rate))}" : "fsync: \(Int(rate)) write+fdatasync per second (one writer, 128-byte records, \(dir))")
    }
}
