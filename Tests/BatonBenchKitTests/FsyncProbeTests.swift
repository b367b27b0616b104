import Foundation
import Histogram
import Testing

@testable import BatonBenchKit

@Suite struct FsyncProbeTests {
    /// Both patterns really write and sync: every pair is counted once in the latency histogram, the
    /// rate is the count over the time the probe ran (at least the time asked for: one stalled sync on
    /// a busy machine can make it much longer), and the probe's file is gone afterwards.
    @Test(arguments: FsyncProbe.Pattern.allCases) func probeTimesEverySync(pattern: FsyncProbe.Pattern) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-fsync-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try FsyncProbe.run(directory: dir, seconds: 0.2, pattern: pattern)
        let count = Double(result.latency.totalCount)
        #expect(count >= 1)
        #expect(result.elapsed >= 0.2)
        #expect(abs(result.syncsPerSecond * result.elapsed - count) < 0.001)
        #expect(result.latency.valueAtPercentile(50) <= result.latency.max && result.latency.min >= 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func missingDirectoryIsAClearError() {
        #expect(throws: DialectError.self) {
            _ = try FsyncProbe.run(directory: "/nonexistent/baton-\(UUID())", seconds: 0.1)
        }
    }
}
