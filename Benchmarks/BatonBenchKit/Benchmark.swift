import NIOCore
import NIOPosix
import NIOSSL

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
    /// The TLS context made from `caFile` for the run.
    var tls: NIOSSLContext? = nil
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
    /// TLS to the target, trusting this CA (PEM); nil: plain TCP.
    public var caFile: String? = nil
    /// Baton: the bearer token each connection sends with AUTH after HELLO.
    public var token: String? = nil

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

private func run(_ given: BenchmarkConfiguration, on group: MultiThreadedEventLoopGroup) async throws -> Report {
    var configured = given
    if let caFile = given.caFile {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        tls.minimumTLSVersion = .tlsv12
        configured.tls = try NIOSSLContext(configuration: tls)
    }
    let config = configured
    let measureFrom = NIODeadline.now() + .init(config.warmup)
    let stopAt = measureFrom + .init(config.duration)
    let endpoint = (host: config.host, port: config.port ?? config.target.defaultPort)
    // All connections open before any is measured; one redirected by a cluster member that does
    // not lead (NOT_LEADER) is reopened at the leader it names, until the run ends.
    var firsts: [EventLoopFuture<Measurement>] = []
    for index in 0..<config.connections {
        firsts.append(try await open(config, index: index, at: endpoint, on: group.next(), measureFrom: measureFrom, stopAt: stopAt))
    }
    let total = try await withThrowingTaskGroup(of: Measurement.self) { tasks in
        for (index, first) in firsts.enumerated() {
            tasks.addTask {
                var measurement = try await first.get()
                var at = endpoint
                while let target = measurement.redirectedTo, NIODeadline.now() < stopAt {
                    if let leader = parseEndpoint(target) {
                        at = leader
                    } else {
                        try await Task.sleep(for: .milliseconds(50))  // no leader known yet: ask again
                    }
                    measurement.redirectedTo = nil
                    guard let next = try? await open(config, index: index, at: at, on: group.next(), measureFrom: measureFrom, stopAt: stopAt)
                    else {
                        measurement.recordError("cannot reach \(at.host):\(at.port) after a redirect")
                        break
                    }
                    let after = try await next.get()
                    measurement.merge(after)
                    measurement.redirectedTo = after.redirectedTo
                }
                return measurement
            }
        }
        var total = Measurement()
        for try await m in tasks { total.merge(m) }
        return total
    }
    let seconds = Double(config.duration.components.seconds) + Double(config.duration.components.attoseconds) / 1e18
    return Report(
        target: config.target.rawValue, workload: config.workload.rawValue, connections: config.connections,
        pipeline: config.pipeline, seconds: seconds, measurement: total)
}

/// `host:port`, as a NOT_LEADER message names the leader; nil for anything else.
func parseEndpoint(_ text: String) -> (host: String, port: Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        (1...65535).contains(port), colon > text.startIndex
    else { return nil }
    return (String(text[..<colon]), port)
}

/// Opens connection `index`; its measurement arrives when it closes.
private func open(
    _ config: BenchmarkConfiguration, index: Int, at endpoint: (host: String, port: Int), on loop: any EventLoop,
    measureFrom: NIODeadline, stopAt: NIODeadline
) async throws -> EventLoopFuture<Measurement> {
    let promise = loop.makePromise(of: Measurement.self)
    let (workload, target, keys, pipeline, tls, token) = (config.workload, config.target, config.keys, config.pipeline, config.tls, config.token)
    @Sendable func connection<D: Dialect>(_ dialect: D) -> LoadConnection<D> {
        LoadConnection(dialect: dialect, workload: workload, keys: keys, pipeline: pipeline,
                       connectionIndex: index, measureFrom: measureFrom, stopAt: stopAt, result: promise)
    }
    _ = try await ClientBootstrap(group: loop)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler: any ChannelHandler
                if let tls {
                    // An IP address is checked against the certificate's IP names.
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                }
                switch target {
                case .baton: handler = connection(BatonDialect(token: token))
                case .redis: handler = connection(RedisDialect())
                case .beanstalkd: handler = connection(BeanstalkdDialect())
                }
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .connect(host: endpoint.host, port: endpoint.port)
        .get()
    return promise.futureResult
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
