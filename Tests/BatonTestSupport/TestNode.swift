import BatonClient
import BatonProtocol
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import BatonServer

/// A real node on 127.0.0.1 with a free port, stopped by `stop()`.
public struct TestNode: Sendable {
    public let server: BatonServer
    public let channel: any Channel
    public let port: Int

    public static func start(_ configure: (inout NodeConfiguration) -> Void = { _ in }) async throws -> TestNode {
        var configuration = NodeConfiguration.inMemory
        configuration.port = 0
        configure(&configuration)
        var logger = Logger(label: "baton.test")
        logger.logLevel = .critical
        let server = try BatonServer(configuration: configuration, logger: logger)
        let channel = try await server.start()
        return TestNode(server: server, channel: channel, port: channel.localAddress!.port!)
    }

    public func client(_ name: String = "test", retryTimeout: Duration = .seconds(10)) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: name)
        c.retryTimeout = retryTimeout
        return BatonClient(configuration: c)
    }

    public func stop() async throws {
        try await server.shutdown(serverChannel: channel)
    }
}

/// Runs `body` against a fresh node and always stops the node.
public func withNode<T>(
    _ configure: (inout NodeConfiguration) -> Void = { _ in }, _ body: (TestNode) async throws -> T
) async throws -> T {
    let node = try await TestNode.start(configure)
    do {
        let result = try await body(node)
        try await node.stop()
        return result
    } catch {
        try? await node.stop()
        throw error
    }
}

/// Passes decoded frames to an async stream.
final class FrameCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = Frame
    let continuation: AsyncThrowingStream<Frame, any Error>.Continuation
    init(_ continuation: AsyncThrowingStream<Frame, any Error>.Continuation) { self.continuation = continuation }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { continuation.finish(throwing: error) }
}

/// A connection that speaks raw frames, for sending what the client library never would.
public actor RawConnection {
    public let channel: any Channel
    private var frames: AsyncThrowingStream<Frame, any Error>.Iterator
    /// How replies are decoded: the version the last `hello` agreed (the newest before one).
    public private(set) var version = batonProtocolVersion

    public init(port: Int) async throws {
        let (stream, continuation) = AsyncThrowingStream<Frame, any Error>.makeStream()
        frames = stream.makeAsyncIterator()
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maxFrameSize: 1 << 24)), FrameCollector(continuation),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    public func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    public func send(_ request: Request, id: UInt32) async throws {
        var b = ByteBuffer()
        b.writeRequest(request, requestID: RequestID(id))
        try await send(b)
    }

    public func hello(id: UInt32 = 1, client: UInt64 = 99, version: UInt16 = batonProtocolVersion) async throws {
        try await send(.hello(Hello(version: version, clientID: ClientID(client), clientName: "raw")), id: id)
        let reply = try await nextReply()
        guard case .hello(let h) = reply.reply else {
            Issue.record("HELLO answered with \(reply.reply)")
            return
        }
        self.version = h.version
    }

    /// The next frame as (request id, reply), or nil when the node closed the connection.
    public func next() async throws -> (id: UInt32, reply: Reply)? {
        var iterator = frames  // the stream's iterator is a reference underneath; the copy advances it
        let frame = try await iterator.next(isolation: self)
        frames = iterator
        guard let frame else { return nil }
        return (frame.requestID.rawValue, try Reply.decode(opcode: frame.opcode, body: frame.body, version: version))
    }

    public func nextReply() async throws -> (id: UInt32, reply: Reply) {
        guard let r = try await next() else { throw BatonClientError.connectionClosed }
        return r
    }

    /// The next `count` replies, by request id: replies come in any order (PROTOCOL.md §1).
    public func nextReplies(_ count: Int) async throws -> [UInt32: Reply] {
        var replies: [UInt32: Reply] = [:]
        for _ in 0..<count {
            let r = try await nextReply()
            replies[r.id] = r.reply
        }
        return replies
    }

    public func close() async {
        try? await channel.close()
    }
}

public func errorCode(_ reply: Reply) -> ErrorCode? {
    if case .error(let e) = reply { return e.code }
    return nil
}

