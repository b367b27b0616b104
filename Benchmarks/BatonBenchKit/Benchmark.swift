import NIOCore
import NIOPosix

/// A system the benchmark can drive.
public enum Target: String, CaseIterable, Sendable, Codable {
    case baton
    case redis
    case beanstalkd

    public var defaultPort: Int {
        switch self {
        case .baton: 7700
        case .redis: 6379
        case .beanstalkd: 11300
        }
    }

    public var workloads: [Workload] {
        switch self {
        case .baton: Workload.allCases
        case .redis: [.lock, .lockContended, .renew]
        case .beanstalkd: [.job]
        }
    }
}

/// Everything one run needs.
public struct BenchmarkConfiguration: Sendable {
    public var target: Target = .baton
    public var host = "127.0.0.1"
    public var port: Int? = nil
    public var workload: Workload = .lock
    /// Connections to open; each one is a client.
    public var connections = 16
    /// Cycles in flight per connection (1: no pipelining).
    public var pipeline = 1
    /// Keys the `lock` workload picks from; fewer keys, more contention.
    public var keys = 10_000
    public var warmup: Duration = .seconds(1)
    public var duration: Duration = .seconds(5)
    /// Event-loop threads of the load generator.
    public var threads = 1

    public init() {}
}

/// Runs one benchmark and returns what it measured over `duration`, after `warmup`.
public func runBenchmark(_ config: BenchmarkConfiguration) async throws -> Report {
    guard config.target.workloads.contains(config.workload) else {
        throw DialectError("the \(config.target) target has no \(config.workload.rawValue) workload")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
    do {
        let report = try await run(config, on: group)
        try await group.shutdownGracefully()
        return report
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

private func run(_ config: BenchmarkConfiguration, on group: MultiThreadedEventLoopGroup) async throws -> Report {
    let measureFrom = NIODeadline.now() + .init(config.warmup)
    let stopAt = measureFrom + .init(config.duration)
    var results: [EventLoopFuture<Measurement>] = []
    for index in 0..<config.connections {
        let loop = group.next()
        let promise = loop.makePromise(of: Measurement.self)
        results.append(promise.futureResult)
        let workload = config.workload
        let target = config.target
        let keys = config.keys
        let pipeline = config.pipeline
        _ = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler: any ChannelHandler
                    switch target {
                    case .baton:
                        handler = LoadConnection(dialect: BatonDialect(), workload: workload, keys: keys, pipeline: pipeline,
                                                 connectionIndex: index, measureFrom: measureFrom, stopAt: stopAt, result: promise)
                    case .redis:
                        handler = LoadConnection(dialect: RedisDialect(), workload: workload, keys: keys, pipeline: pipeline,
                                                 connectionIndex: index, measureFrom: measureFrom, stopAt: stopAt, result: promise)
                    case .beanstalkd:
                        handler = LoadConnection(dialect: BeanstalkdDialect(), workload: workload, keys: keys, pipeline: pipeline,
                                                 connectionIndex: index, measureFrom: measureFrom, stopAt: stopAt, result: promise)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: config.host, port: config.port ?? config.target.defaultPort)
            .get()
    }
    var total = Measurement()
    for r in results { total.merge(try await r.get()) }
    let seconds = Double(config.duration.components.seconds) + Double(config.duration.components.attoseconds) / 1e18
    return Report(
        target: config.target.rawValue, workload: config.workload.rawValue, connections: config.connections,
        pipeline: config.pipeline, seconds: seconds, measurement: total)
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
