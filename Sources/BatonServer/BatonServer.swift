import BatonProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import UnixSignals

/// A Baton node serving clients over TCP.
///
/// Every connection and the state machine share one event loop, as in Redis: a command is decoded,
/// applied and answered without a thread hop or a lock, and the answers to one read are written together.
public final class BatonServer: Sendable {
    public let configuration: NodeConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let runtime: NIOLoopBoundBox<NodeRuntime>
    let logger: Logger

    private let storage: any NodeStorage
    private let metricsChannel = NIOLockedValueBox<(any Channel)?>(nil)
    private let http2Channel = NIOLockedValueBox<(any Channel)?>(nil)
    private let certificates: CertificateStore
    /// Why the node stopped serving on its own (see `NodeRuntime.onFatalStop`); at most one element.
    let fatalStops: AsyncStream<String>

    /// Recovers the node's state from its data directory (if it has one); throws when the data is
    /// damaged beyond a torn tail.
    public init(configuration: NodeConfiguration, logger: Logger = Logger(label: "baton")) throws {
        var logger = logger
        logger[metadataKey: "node.id"] = "\(configuration.nodeID)"
        self.configuration = configuration
        self.logger = logger
        let metrics = NodeMetrics()
        let adminToken = try configuration.auth?.adminTokenHash()
        if let warning = configuration.auth?.adminTokenFileWarning() { logger.warning("\(warning)") }
        let certificates = try CertificateStore(tls: configuration.tls, peerTLS: configuration.peerTLS)
        self.certificates = certificates
        var peerTLS: PeerTransport.TLS?
        if configuration.peerTLS != nil, let membership = configuration.membership {
            let members = Dictionary(uniqueKeysWithValues: membership.nodes.map { (membership[$0]!.nodeID, $0) })
            peerTLS = PeerTransport.TLS(certificates: certificates, members: members)
        }
        let recovered = try RecoveredState.recover(configuration, logger: logger, metrics: metrics)
        self.storage = recovered.storage
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let runtime = NodeRuntime(
            configuration: configuration, eventLoop: loop, recovered: recovered, metrics: metrics, adminToken: adminToken, peerTLS: peerTLS,
            logger: logger)
        let (fatalStops, fatal) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1))
        runtime.onFatalStop = { fatal.yield($0) }
        self.fatalStops = fatalStops
        self.runtime = NIOLoopBoundBox.makeBoxSendingValue(runtime, eventLoop: loop)
    }

    /// Binds the client listener and returns the server channel; the node serves until `shutdown`.
    public func start() async throws -> any Channel {
        let runtime = self.runtime
        let configuration = self.configuration
        let certificates = self.certificates
        let logger = self.logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelInitializer { AcceptErrorLogger.install(on: $0, logger: logger, listener: "clients") }
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = certificates.current.client {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ClientConnectionHandler(runtime: runtime.value, allocator: channel.allocator))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        let address = "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)"
        let peers = try await runtime.eventLoop.flatSubmit {
            runtime.value.address = address
            return runtime.value.start()
        }.get()
        if let peers {
            // Members talk Raft on their raftPort.
            logger.info("raft peers", metadata: ["address": "\(peers.localAddress.map { "\($0)" } ?? "?")"])
        }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        if let metricsPort = configuration.metricsPort {
            let metrics = try await ServerBootstrap(group: group)
                .serverChannelInitializer { AcceptErrorLogger.install(on: $0, logger: logger, listener: "metrics") }
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(runtime: runtime.value))
                    }
                }
                .bind(host: configuration.host, port: metricsPort)
                .get()
            metricsChannel.withLockedValue { $0 = metrics }
            logger.info("metrics at /metrics", metadata: ["address": "\(metrics.localAddress.map { "\($0)" } ?? "?")"])
        }
        if let http2Port = configuration.http2Port {
            let h2 = try await bindHTTP2(port: http2Port)
            http2Channel.withLockedValue { $0 = h2 }
            logger.info(configuration.tls == nil ? "HTTP/2 (h2c, prior knowledge)" : "HTTP/2 (h2 over TLS)", metadata: ["address": "\(h2.localAddress.map { "\($0)" } ?? "?")"])
        }
        return channel
    }

    /// The port of the HTTP/2 listener, once started (nil when it is off).
    public var http2Port: Int? {
        http2Channel.withLockedValue { $0?.localAddress?.port }
    }

    /// Binds the HTTP/2 listener: h2c with prior knowledge; each stream is one Baton request.
    private func bindHTTP2(port: Int) async throws -> any Channel {
        let runtime = self.runtime
        let certificates = self.certificates
        let logger = self.logger
        return try await ServerBootstrap(group: group)
            .serverChannelInitializer { AcceptErrorLogger.install(on: $0, logger: logger, listener: "http2") }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = certificates.current.http2 {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(runtime: runtime.value))
                }
            }
            .bind(host: configuration.host, port: port)
            .get()
    }

    /// Reads the TLS certificates and keys again (SIGHUP): new connections use them. Throws, and keeps
    /// the ones in use, when a file cannot be used.
    public func reloadCertificates() throws {
        try certificates.reload()
        logger.notice("certificates reloaded")
    }

    /// The port of the metrics endpoint, once started (nil when it is off).
    public var metricsPort: Int? {
        metricsChannel.withLockedValue { $0?.localAddress?.port }
    }

    /// Stops accepting, tells connected clients the node is going away, and stops the event loop.
    public func shutdown(serverChannel: any Channel) async throws {
        try? await serverChannel.close()
        try? await metricsChannel.withLockedValue { $0 }?.close()
        try? await http2Channel.withLockedValue { $0 }?.close()
        let runtime = self.runtime
        try await runtime.eventLoop.submit { runtime.value.shutDown() }.get()
        try await Task.sleep(for: .milliseconds(50))  // let the goodbye frames go out
        try await group.shutdownGracefully()
        await storage.close()
        logger.info("stopped")
    }
}

/// The node as a swift-service-lifecycle service: serves until graceful shutdown (SIGTERM, SIGINT).
public struct BatonNodeService: Service {
    let server: BatonServer

    public init(configuration: NodeConfiguration, logger: Logger) throws {
        server = try BatonServer(configuration: configuration, logger: logger)
    }

    /// Serves until graceful shutdown; on SIGHUP reads the TLS certificates and keys again. Throws
    /// `NodeStopped` when the node stopped serving on its own (a storage failure), so the process
    /// exits non-zero and its supervisor restarts it.
    public func run() async throws {
        let channel = try await server.start()
        let server = self.server
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let fatal: String? = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await _ in signals {  // ends when the group is cancelled
                    do {
                        try server.reloadCertificates()
                    } catch {
                        server.logger.error("SIGHUP: certificates not reloaded; the old ones stay in use", metadata: ["error": "\(error)"])
                    }
                }
                return nil
            }
            group.addTask {
                for await reason in server.fatalStops { return reason }
                return nil
            }
            group.addTask {
                try? await gracefulShutdown()
                return nil
            }
            // The first of: a graceful shutdown (nil), or the node stopping on its own.
            let first = await group.first { _ in true } ?? nil
            group.cancelAll()
            return first
        }
        try await server.shutdown(serverChannel: channel)
        if let fatal { throw NodeStopped(reason: fatal) }
    }
}

/// The node stopped serving on its own: what it could not do. The process exits non-zero.
public struct NodeStopped: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "the node stopped: \(reason)" }
}
