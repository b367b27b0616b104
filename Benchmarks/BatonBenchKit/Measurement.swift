import Foundation
import Histogram

/// What one connection (or, merged, one whole run) measured.
public struct Measurement: Sendable {
    /// Latency of each completed cycle, in microseconds.
    public var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    /// Cycles that ran to their end (a lock acquired and released, a job added, claimed and completed).
    public var cycles: UInt64 = 0
    /// Requests sent within completed cycles (an acquire+release cycle is two).
    public var requests: UInt64 = 0
    /// Attempts that found the lock busy or no job to claim; they are retried and not counted as cycles.
    public var misses: UInt64 = 0
    /// Replies that were errors, or did not parse.
    public var errors: UInt64 = 0
    /// The first few error texts, for the report.
    public var errorSamples: [String] = []
    /// Connections sent elsewhere by a cluster member that does not lead (NOT_LEADER), and reopened
    /// at the leader it named.
    public var redirects: UInt64 = 0
    /// Where this connection was told to go when it closed (`""`: no leader known yet); not merged.
    public var redirectedTo: String?

    public init() {}

    public mutating func recordCycle(microseconds: UInt64, requests: UInt64) {
        _ = latency.record(min(max(microseconds, 1), latency.highestTrackableValue))
        cycles += 1
        self.requests += requests
    }

    public mutating func recordError(_ text: String) {
        errors += 1
        if errorSamples.count < 5 { errorSamples.append(text) }
    }

    public mutating func merge(_ other: Measurement) {
        latency.add(other.latency)
        cycles += other.cycles
        requests += other.requests
        misses += other.misses
        errors += other.errors
        redirects += other.redirects
        errorSamples += other.errorSamples.prefix(max(0, 5 - errorSamples.count))
    }
}

/// The numbers a run prints: throughput and latency percentiles over the measured period.
public struct Report: Codable, Sendable, Equatable {
    public var target: String
    public var workload: String
    public var connections: Int
    public var pipeline: Int
    public var seconds: Double
    public var cycles: UInt64
    public var cyclesPerSecond: Double
    public var requestsPerSecond: Double
    public var misses: UInt64
    public var errors: UInt64
    public var redirects: UInt64
    public var latencyMicroseconds: Percentiles
    public var errorSamples: [String]

    public struct Percentiles: Codable, Sendable, Equatable {
        public var p50: UInt64
        public var p90: UInt64
        public var p99: UInt64
        public var p999: UInt64
        public var max: UInt64

        /// The percentiles of `histogram`, all zero when it is empty.
        public init(_ histogram: Histogram<UInt64>) {
            guard histogram.totalCount > 0 else {
                (p50, p90, p99, p999, max) = (0, 0, 0, 0, 0)
                return
            }
            p50 = histogram.valueAtPercentile(50)
            p90 = histogram.valueAtPercentile(90)
            p99 = histogram.valueAtPercentile(99)
            p999 = histogram.valueAtPercentile(99.9)
            max = histogram.max
        }
    }

    public init(target: String, workload: String, connections: Int, pipeline: Int, seconds: Double, measurement m: Measurement) {
        self.target = target
        self.workload = workload
        self.connections = connections
        self.pipeline = pipeline
        self.seconds = seconds
        cycles = m.cycles
        cyclesPerSecond = seconds > 0 ? Double(m.cycles) / seconds : 0
        requestsPerSecond = seconds > 0 ? Double(m.requests) / seconds : 0
        misses = m.misses
        errors = m.errors
        redirects = m.redirects
        errorSamples = m.errorSamples
        latencyMicroseconds = Percentiles(m.latency)
    }

    /// A few lines for a person.
    public var text: String {
        func ms(_ us: UInt64) -> String { String(format: "%.2f", Double(us) / 1000) }
        let l = latencyMicroseconds
        var s = """
            \(target) \(workload): \(connections) connections × \(pipeline) in flight, \(String(format: "%.1f", seconds)) s
              throughput  \(String(format: "%.0f", cyclesPerSecond)) cycles/s  (\(String(format: "%.0f", requestsPerSecond)) requests/s)
              latency ms  p50 \(ms(l.p50))  p90 \(ms(l.p90))  p99 \(ms(l.p99))  p99.9 \(ms(l.p999))  max \(ms(l.max))
              misses \(misses)  errors \(errors)
            """
        if redirects > 0 { s += "  redirects \(redirects) (reconnected to the leader)" }
        for e in errorSamples { s += "\n  error: \(e)" }
        return s
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
