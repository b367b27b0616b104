import BatonProtocol
import BatonTestSupport
import Logging
import NIOCore
import Testing

@testable import BatonBenchKit
@testable import BatonServer

@Suite struct MeasurementTests {
    @Test func percentilesComeFromTheHistogram() {
        var m = Measurement()
        for us in 1...1000 { m.recordCycle(microseconds: UInt64(us), requests: 2) }
        let r = Report(target: "t", workload: "lock", connections: 1, pipeline: 1, seconds: 2, measurement: m)
        #expect(r.cycles == 1000)
        #expect(r.cyclesPerSecond == 500)
        #expect(r.requestsPerSecond == 1000)
        #expect((495...505).contains(r.latencyMicroseconds.p50))
        #expect((985...995).contains(r.latencyMicroseconds.p99))
        #expect((999...1001).contains(r.latencyMicroseconds.max))
    }

    @Test func mergeAddsCountsAndKeepsAFewErrorSamples() {
        var a = Measurement()
        var b = Measurement()
        a.recordCycle(microseconds: 10, requests: 3)
        b.recordCycle(microseconds: 5000, requests: 3)
        b.misses = 4
        for i in 0..<7 { b.recordError("e\(i)") }
        a.merge(b)
        #expect(a.cycles == 2 && a.requests == 6 && a.misses == 4 && a.errors == 7)
        #expect(a.errorSamples == ["e0", "e1", "e2", "e3", "e4"])
        #expect(a.latency.max >= 5000 && a.latency.min <= 10)
    }

    @Test func emptyRunReportsZeros() {
        let r = Report(target: "t", workload: "job", connections: 1, pipeline: 1, seconds: 1, measurement: Measurement())
        #expect(r.cyclesPerSecond == 0 && r.latencyMicroseconds.max == 0)
        #expect(r.json.contains("\"cycles\":0"))
    }

    @Test func cyclesStepThroughTheirRequests() {
        var lock = Cycle(workload: .lock, key: "k", step: .acquire(key: "k", wait: false))
        #expect(lock.next(after: .granted(token: 5)).step == .release(key: "k", token: 5))
        #expect(lock.next(after: .done).step == nil)
        #expect(lock.requests == 2)
        var busy = Cycle(workload: .lock, key: "k", step: .acquire(key: "k", wait: false))
        #expect(busy.next(after: .busy).missed)
        var job = Cycle(workload: .job, key: "", step: .add)
        #expect(job.next(after: .done).step == .claim)
        #expect(job.next(after: .job(id: 3, token: 9)).step == .complete(id: 3, token: 9))
        #expect(job.next(after: .done).step == nil && job.requests == 3)
    }

    @Test func redisRepliesParseOnlyWhenComplete() throws {
        var d = RedisDialect()
        var pending = [0, 1, 2, 3]
        var b = ByteBuffer(string: "+OK\r\n$-1\r\n:1\r\n$5\r\nhel")
        #expect(try d.read(&b, pending: &pending)?.outcome == .granted(token: 0))
        #expect(try d.read(&b, pending: &pending)?.outcome == .busy)
        #expect(try d.read(&b, pending: &pending)?.outcome == .done)
        #expect(try d.read(&b, pending: &pending) == nil)
        #expect(b.readableBytes == 7 && pending == [3])  // the partial bulk string is left in place
    }

    @Test func beanstalkdRepliesParse() throws {
        var d = BeanstalkdDialect()
        var pending = [0, 1, 2]
        var b = ByteBuffer(string: "INSERTED 7\r\nRESERVED 7 3\r\nabc\r\nTIMED_OUT\r\n")
        #expect(try d.read(&b, pending: &pending)?.outcome == .done)
        #expect(try d.read(&b, pending: &pending)?.outcome == .job(id: 7, token: 0))
        #expect(try d.read(&b, pending: &pending)?.outcome == .empty)
        #expect(pending.isEmpty)
    }
}

/// Runs `body` with the port of a fresh in-memory node, and stops the node afterwards.
func withNode<T>(_ body: (Int) async throws -> T) async throws -> T {
    var configuration = NodeConfiguration.inMemory
    configuration.port = 0
    var logger = Logger(label: "bench.test")
    logger.logLevel = .critical
    let server = try BatonServer(configuration: configuration, logger: logger)
    let channel = try await server.start()
    do {
        let result = try await body(channel.localAddress!.port!)
        try await server.shutdown(serverChannel: channel)
        return result
    } catch {
        try await server.shutdown(serverChannel: channel)
        throw error
    }
}

/// Each workload for a second against a real node: it runs, completes cycles, and sees no errors.
@Suite(.heavy, .timeLimit(.minutes(1))) struct BenchSmokeTests {
    @Test(arguments: Workload.allCases)
    func workloadRunsAgainstARealNode(_ workload: Workload) async throws {
        let report = try await withNode { port in
            var config = BenchmarkConfiguration()
            config.port = port
            config.workload = workload
            config.connections = 4
            config.pipeline = 2
            config.keys = 100
            config.warmup = .milliseconds(100)
            config.duration = .seconds(1)
            return try await runBenchmark(config)
        }
        #expect(report.cycles > 0)
        #expect(report.errors == 0, "\(report.errorSamples)")
        #expect(report.latencyMicroseconds.p50 > 0 && report.latencyMicroseconds.p50 <= report.latencyMicroseconds.max)
    }
}
