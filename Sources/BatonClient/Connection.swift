import BatonProtocol
import NIOCore
import NIOPosix

/// A request on its way out: its frame, and the promise its answer completes.
struct PendingRequest {
    var requestID: RequestID
    var frame: ByteBuffer
    var timeout: TimeAmount
    var promise: EventLoopPromise<Reply>
}

/// Matches answers to requests on one connection, by request id; many requests may be in flight.
final class ClientChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = PendingRequest
    typealias OutboundOut = ByteBuffer

    private var inFlight: [RequestID: (promise: EventLoopPromise<Reply>, timer: Scheduled<Void>?)] = [:]
    private var isOpen = true

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard isOpen else {
            request.promise.fail(BatonClientError.connectionClosed)
            promise?.fail(BatonClientError.connectionClosed)
            return
        }
        let id = request.requestID
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: request.timeout) {
            if let entry = loopBoundSelf.value.inFlight.removeValue(forKey: id) {
                entry.promise.fail(BatonClientError.timedOut)
            }
        }
        inFlight[id] = (request.promise, timer)
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let reply: Reply
        do {
            reply = try Reply.decode(opcode: frame.opcode, body: frame.body)
        } catch {
            failAll(BatonClientError.unexpectedReply("\(error)"))
            context.close(promise: nil)
            return
        }
        if frame.requestID.rawValue == 0 {
            // Connection-level news (shutting down, idle timeout, framing error): the node closes next.
            if case .error(let e) = reply { failAll(BatonClientError.server(e)) }
            return
        }
        guard let entry = inFlight.removeValue(forKey: frame.requestID) else { return }  // timed out already
        entry.timer?.cancel()
        entry.promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        failAll(BatonClientError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(BatonClientError.unexpectedReply("\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: BatonClientError) {
        let entries = inFlight
        inFlight.removeAll()
        for (_, entry) in entries {
            entry.timer?.cancel()
            entry.promise.fail(error)
        }
    }
}

/// One open, greeted connection to a node.
final class Connection: Sendable {
    let channel: any Channel
    let hello: HelloReply
    let endpoint: Endpoint

    private init(channel: any Channel, hello: HelloReply, endpoint: Endpoint) {
        self.channel = channel
        self.hello = hello
        self.endpoint = endpoint
    }

    /// Connects to `endpoint` and exchanges HELLO.
    static func open(
        to endpoint: Endpoint, hello: Hello, group: any EventLoopGroup, connectTimeout: TimeAmount,
        requestTimeout: TimeAmount, maxFrameSize: Int
    ) async throws -> Connection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                            ClientChannelHandler(),
                        ])
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .get()
        } catch {
            throw BatonClientError.connectFailed("\(endpoint): \(error)")
        }
        let reply = try await send(.hello(hello), requestID: RequestID(1), timeout: requestTimeout, on: channel)
        switch reply {
        case .hello(let h):
            return Connection(channel: channel, hello: h, endpoint: endpoint)
        case .error(let e):
            try? await channel.close()
            throw BatonClientError.server(e)
        default:
            try? await channel.close()
            throw BatonClientError.unexpectedReply("\(reply.opcode) in answer to HELLO")
        }
    }

    func send(_ request: Request, requestID: RequestID, timeout: TimeAmount) async throws -> Reply {
        try await Self.send(request, requestID: requestID, timeout: timeout, on: channel)
    }

    private static func send(
        _ request: Request, requestID: RequestID, timeout: TimeAmount, on channel: any Channel
    ) async throws -> Reply {
        var frame = channel.allocator.buffer(capacity: 64)
        frame.writeRequest(request, requestID: requestID)
        let promise = channel.eventLoop.makePromise(of: Reply.self)
        channel.writeAndFlush(PendingRequest(requestID: requestID, frame: frame, timeout: timeout, promise: promise))
            .whenFailure { promise.fail($0) }
        // A cancelled caller stops waiting at once; a late answer then completes nothing.
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }

    var isActive: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }
}

/// A node's address: `host:port`.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    /// Parses `host:port`; a missing port means 7700.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !parts[0].isEmpty:
            self.init(host: String(parts[0]), port: 7700)
        case 2 where !parts[0].isEmpty:
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
            self.init(host: String(parts[0]), port: port)
        default:
            return nil
        }
    }
    public var description: String { "\(host):\(port)" }
}
