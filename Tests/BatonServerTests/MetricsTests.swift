import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import BatonServer

/// Fetches `path` over HTTP/1.1 from 127.0.0.1:`port`; returns the status line's code and the body.
func httpGet(port: Int, path: String, method: String = "GET") async throws -> (status: Int, body: String) {
    let fd = try rawConnect(port: port)
    defer { close(fd) }
    let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { break }
        data += chunk[0..<n]
    }
    let text = String(decoding: data, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
}

/// A sample of the Prometheus text exposition format: `name{label="v",...} value`.
struct Sample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// Parses the Prometheus text format strictly enough to catch a malformed line: every line is a
/// comment (`# HELP name text`, `# TYPE name counter|gauge|histogram|summary|untyped`) or a sample.
func parseExposition(_ text: String) throws -> (types: [String: String], samples: [Sample]) {
    struct Malformed: Error, CustomStringConvertible { var description: String }
    var types: [String: String] = [:]
    var samples: [Sample] = []
    let name = /[a-zA-Z_:][a-zA-Z0-9_:]*/
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                throw Malformed(description: "bad TYPE line: \(line)")
            }
            types[String(parts[2])] = String(parts[3])
            continue
        }
        if line.hasPrefix("#") { continue }
        guard let m = try /^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)( \d+)?$/.wholeMatch(in: line) else {
            throw Malformed(description: "bad sample line: \(line)")
        }
        var labels: [String: String] = [:]
        if let l = m.output.labels, !l.isEmpty {
            for pair in l.split(separator: ",") {
                guard let eq = pair.firstIndex(of: "="), pair[pair.index(after: eq)...].hasPrefix("\""), pair.hasSuffix("\""),
                    (try? name.wholeMatch(in: pair[..<eq])) != nil
                else { throw Malformed(description: "bad label \(pair) in: \(line)") }
                labels[String(pair[..<eq])] = String(pair[pair.index(eq, offsetBy: 2)..<pair.index(before: pair.endIndex)])
            }
        }
        let v = String(m.output.value)
        guard let value = Double(v) ?? (v == "+Inf" ? .infinity : v == "-Inf" ? -.infinity : v == "NaN" ? .nan : nil) else {
            throw Malformed(description: "bad value in: \(line)")
        }
        samples.append(Sample(name: String(m.output.name), labels: labels, value: value))
    }
    return (types, samples)
}

@Suite(.timeLimit(.minutes(1))) struct MetricsTests {
    @Test func scrapeParsesAsPrometheusTextAndCountsWhatHappened() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withNode({
            $0.metricsPort = 0
            $0.dataDirectory = dir
        }) { node in
            let port = try #require(node.server.metricsPort)
            let c = node.client()
            guard case .granted = try await c.acquireLock("m", ttl: .seconds(30)) else { Issue.record("the premise failed: the lock was not granted"); return }
            _ = try await c.addJob(JobSpec(type: "thumb"))
            _ = try await c.addJob(JobSpec(type: "thumb"))
            _ = try await c.claimJob(types: ["thumb"])
            await #expect(throws: BatonClientError.self) { try await c.releaseLock("m", token: FencingToken(999)) }

            let (status, body) = try await httpGet(port: port, path: "/metrics")
            #expect(status == 200)
            let (types, samples) = try parseExposition(body)
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
            }
            #expect(types["baton_requests_total"] == "counter")
            #expect(types["baton_request_duration_seconds"] == "histogram")
            #expect(value("baton_requests_total", ["op": "lock_acquire", "result": "ok"]) == 1)
            #expect(value("baton_requests_total", ["op": "job_add", "result": "ok"]) == 2)
            #expect(value("baton_requests_total", ["op": "lock_release", "result": "stale_token"]) == 1)
            #expect((value("baton_request_duration_seconds_count", ["op": "job_add"]) ?? 0) == 2)
            #expect(value("baton_locks_held") == 1)
            #expect(value("baton_leases") == 2)
            #expect(value("baton_jobs", ["type": "thumb", "state": "queued"]) == 1)
            #expect(value("baton_jobs", ["type": "thumb", "state": "running"]) == 1)
            #expect(value("baton_connections") == 1)
            #expect(value("baton_quota_used", ["quota": "maxJobs"]) == 2)
            #expect(value("baton_quota_used", ["quota": "maxLocks"]) == 1)
            #expect(value("baton_quota_used", ["quota": "maxJobBytes"]) == 0)
            #expect(value("baton_quota_used", ["quota": "maxClients"]) == 1)
            #expect(value("baton_quota_limit", ["quota": "maxJobBytes"]) == Double(1 << 30))
            #expect((value("baton_raft_applied_index") ?? 0) >= 5)
            #expect(value("baton_raft_term") == 1)
            #expect((value("baton_wal_fsync_duration_seconds_count") ?? 0) >= 1)
            #expect((value("baton_wal_batch_entries_count") ?? 0) >= 1)

            #expect(try await httpGet(port: port, path: "/nothing").status == 404)
            #expect(try await httpGet(port: port, path: "/metrics", method: "POST").status == 405)
            await c.shutdown()
        }
    }

    /// Issue 22: the leader counts each schedule's fires, skips and misses, and the lag of each fire.
    @Test func schedulesAreCountedPerScheduleWithTheirLag() async throws {
        try await withNode({ $0.metricsPort = 0 }) { node in
            let port = try #require(node.server.metricsPort)
            let c = node.client()
            try await c.putSchedule(ScheduleSpec(name: "every-second", every: 1_000, job: JobSpec(type: "m"), overlap: .skip))
            // Two slots: the first fires, the second is skipped (the first job is still queued).
            let settled = try await eventually("two slots have come", every: .milliseconds(100)) {
                try await c.getSchedule("every-second").flatMap { $0.fires + $0.skips >= 2 ? $0 : nil }
            }
            #expect(settled.fires == 1 && settled.skips >= 1, "\(settled)")
            let (_, body) = try await httpGet(port: port, path: "/metrics")
            let (types, samples) = try parseExposition(body)
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
            }
            #expect(types["baton_schedule_fires_total"] == "counter")
            #expect(types["baton_schedule_fire_lag_seconds"] == "histogram")
            #expect(value("baton_schedule_fires_total", ["schedule": "every-second"]) == 1)
            #expect(value("baton_schedule_skipped_total", ["schedule": "every-second"]).map { $0 >= 1 } == true)
            #expect(value("baton_schedule_missed_total", ["schedule": "every-second"]) == 0)
            #expect(value("baton_schedule_fire_lag_seconds_count").map { $0 >= 2 } == true)
            #expect(value("baton_quota_limit", ["quota": "maxSchedules"]) == 100_000)
        }
    }

    @Test func aScheduleNameIsEscapedAsALabelValue() throws {
        var text = ""
        ScheduleExposition.write([(name: "a\"b\\c\nd", fires: 3, skips: 1, misses: 0)], into: &text)
        #expect(text.contains(#"baton_schedule_fires_total{schedule="a\"b\\c\nd"} 3"#), "\(text)")
        #expect(text.split(separator: "\n").count == 9)  // HELP, TYPE and one sample for each of three counters
        var none = ""
        ScheduleExposition.write([], into: &none)
        #expect(none.isEmpty)
    }

    @Test func malformedExpositionIsCaught() {
        #expect(throws: (any Error).self) { try parseExposition("baton_x{op=unquoted} 1\n") }
        #expect(throws: (any Error).self) { try parseExposition("# TYPE baton_x sometype\n") }
        #expect(throws: (any Error).self) { try parseExposition("baton x 1\n") }
    }
}
