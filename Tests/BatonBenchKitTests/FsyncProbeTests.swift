import Foundation
import Histogram
import Testing

@testable import BatonBenchKit

@Suite struct FsyncProbeTests {
    /// Both patterns really write and sync: every pair is counted once in the latency histogram, the
    /// rate matches the count, and the probe's file is gone afterwards.
    @Test(arguments: FsyncProbe.Pattern.allCases) func probeTimesEverySync(pattern: FsyncProbe.Pattern) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-fsync-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try FsyncProbe.run(directory: dir, seconds: 0.2, pattern: pattern)
        let count = Double(result.latency.totalCount)
        #expect(count >= 1)
        #expect(result.syncsPerSecond > 0 && abs(result.syncsPerSecond * 0.2 - count) <= max(2, count * 0.25))
        #expect(result.latency.valueAtPercentile(50) <= result.latency.max && result.latency.min >= 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func missingDirectoryIsAClearError() {
        #expect(throws: DialectError.self) {
            _ = try FsyncProbe.run(directory: "/nonexistent/baton-\(UUID())", seconds: 0.1)
        }
    }
}
