import BatonProtocol
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

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
    /// How replies are laid out: the oldest version until HELLO's answer agrees one (HELLO's answer
    /// itself is the same in every version).
    private var version = batonProtocolVersions.lowerBound

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
            reply = try Reply.decode(opcode: frame.opcode, body: frame.body, version: version)
            if case .hello(let h) = reply, batonProtocolVersions.contains(h.version) { version = h.version }
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
        // A frame that does not decode is the node's fault; a failed TLS handshake is said as such;
        // anything else (a reset connection, say, when a node is killed) is a lost connection, which
        // a retry elsewhere may get past.
        if error is ErrorReply {
            failAll(BatonClientError.unexpectedReply("\(error)"))
        } else if error is NIOSSLError || error is BoringSSLError {
            failAll(BatonClientError.connectFailed(TLSHandshakeWatch.message("\(error)")))
        } else {
            failAll(BatonClientError.connectionClosed)
        }
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

/// One open, greeted connection to a node, over the TCP protocol or over HTTP/2.
final class Connection: Sendable {
    let channel: any Channel
    let hello: HelloReply
    let endpoint: Endpoint
    private let carrier: Carrier

    /// How requests travel: as frames on the TCP connection, or one HTTP/2 stream each.
    enum Carrier: Sendable {
        case tcp
        case http2(NIOHTTP2Handler.StreamMultiplexer, clientID: String, authority: String, authorization: String?)
    }

    private init(channel: any Channel, hello: HelloReply, endpoint: Endpoint, carrier: Carrier) {
        self.channel = channel
        self.hello = hello
        self.endpoint = endpoint
        self.carrier = carrier
    }

    /// Connects to `endpoint`, exchanges HELLO and, with a `token`, AUTH.
    static func open(
        to endpoint: Endpoint, transport: BatonClient.Transport, tls: BatonClient.TLS? = nil, token: String? = nil, hello: Hello,
        group: any EventLoopGroup, connectTimeout: TimeAmount, requestTimeout: TimeAmount, maxFrameSize: Int
    ) async throws -> Connection {
        let channel: any Channel
        let carrier: Carrier
        let tlsContext: NIOSSLContext?
        do {
            tlsContext = try tls?.makeContext(applicationProtocols: transport == .http2 ? ["h2"] : [])
        } catch {
            throw BatonClientError.connectFailed("\(endpoint): TLS: \(error)")
        }
        // An IP address is checked against the certificate's IP names; it is not sent as SNI.
        let serverName = endpoint.host.contains(where: { $0.isLetter }) && !endpoint.host.contains(":") ? endpoint.host : nil
        let watch = tlsContext.map { _ in TLSHandshakeWatch() }
        do {
            let bootstrap = ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            switch transport {
            case .tcp:
                channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext, let watch {
                            try channel.pipeline.syncOperations.addHandlers([
                                NIOSSLClientHandler(context: tlsContext, serverHostname: serverName), watch,
                            ])
                        }
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                            ClientChannelHandler(),
                        ])
                        return channel
                    }
                }
                carrier = .tcp
            case .http2:
                let (c, streams) = try await bootstrap.connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext, let watch {  // h2 over TLS, offered by ALPN
                            try channel.pipeline.syncOperations.addHandlers([
                                NIOSSLClientHandler(context: tlsContext, serverHostname: serverName), watch,
                            ])
                        }
                        var settings = NIOHTTP2Handler.ConnectionConfiguration()
                        settings.initialSettings = [HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20)]
                        let streams = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .client, connectionConfiguration: settings, streamConfiguration: .init()
                        ) { pushed in pushed.close() }
                        return (channel, streams)
                    }
                }
                channel = c
                carrier = .http2(
                    streams, clientID: hexID(hello.clientID), authority: "\(endpoint)", authorization: token.map { "Bearer \($0)" })
            }
        } catch {
            throw BatonClientError.connectFailed("\(endpoint): \(error)")
        }
        let reply: Reply
        do {
            reply = try await send(.hello(hello), requestID: RequestID(1), timeout: requestTimeout, on: channel, carrier)
        } catch BatonClientError.unexpectedReply(let what) {
            try? await channel.close()
            // Not Baton's frames at all: most often a node on TLS reached without it (its first bytes,
            // a TLS alert, read as a frame length far over the maximum), or another service.
            throw BatonClientError.connectFailed(
                "\(endpoint) does not answer HELLO in Baton's frames (\(what)): is the node on TLS (configure tls), or is this another service?")
        } catch {
            try? await channel.close()
            try? await channel.closeFuture.get()  // the handshake's error, if any, has been seen by now
            if let failure = watch?.failure.withLockedValue({ $0 }) {
                throw BatonClientError.connectFailed("\(endpoint): \(TLSHandshakeWatch.message(failure))")
            }
            throw error
        }
        switch reply {
        case .hello(let h) where batonProtocolVersions.contains(h.version):
            if let token {
                try await authenticate(token, on: channel, carrier, endpoint: endpoint, timeout: requestTimeout)
            }
            return Connection(channel: channel, hello: h, endpoint: endpoint, carrier: carrier)
        case .hello(let h):
            try? await channel.close()
            throw BatonClientError.unexpectedReply("HELLO agreed protocol version \(h.version), which this client does not speak")
        case .error(let e) where e.code == .unsupportedVersion && hello.version > batonProtocolVersions.lowerBound:
            // A node of a build that speaks one version only, older than ours (it closes the connection):
            // ask again for the oldest this client speaks.
            try? await channel.close()
            var older = hello
            older.version = batonProtocolVersions.lowerBound
            return try await open(
                to: endpoint, transport: transport, tls: tls, token: token, hello: older, group: group, connectTimeout: connectTimeout,
                requestTimeout: requestTimeout, maxFrameSize: maxFrameSize)
        case .error(let e):
            try? await channel.close()
            throw BatonClientError.server(e)
        default:
            try? await channel.close()
            throw BatonClientError.unexpectedReply("\(reply.opcode) in answer to HELLO")
        }
    }

    /// AUTH with `token`; a refusal closes the channel and is thrown (`.server`, UNAUTHENTICATED).
    private static func authenticate(
        _ token: String, on channel: any Channel, _ carrier: Carrier, endpoint: Endpoint, timeout: TimeAmount
    ) async throws {
        let reply: Reply
        do {
            reply = try await send(.auth(token: token), requestID: RequestID(2), timeout: timeout, on: channel, carrier)
        } catch {
            try? await channel.close()
            throw error
        }
        switch reply {
        case .authenticated:
            return
        case .error(let e):
            try? await channel.close()
            throw BatonClientError.server(e)
        default:
            try? await channel.close()
            throw BatonClientError.unexpectedReply("\(reply.opcode) in answer to AUTH")
        }
    }

    func send(_ request: Request, requestID: RequestID, timeout: TimeAmount) async throws -> Reply {
        try await Self.send(request, requestID: requestID, timeout: timeout, on: channel, carrier)
    }

    private static func send(
        _ request: Request, requestID: RequestID, timeout: TimeAmount, on channel: any Channel, _ carrier: Carrier
    ) async throws -> Reply {
        let promise = channel.eventLoop.makePromise(of: Reply.self)
        switch carrier {
        case .tcp:
            var frame = channel.allocator.buffer(capacity: 64)
            frame.writeRequest(request, requestID: requestID)
            // A write that fails never reached the node (the connection closed under it): retriable.
            channel.writeAndFlush(PendingRequest(requestID: requestID, frame: frame, timeout: timeout, promise: promise))
                .whenFailure { promise.fail($0 as? BatonClientError ?? .connectionClosed) }
        case .http2(let streams, let clientID, let authority, let authorization):
            sendOnNewStream(
                request, streams: streams, clientID: clientID, authority: authority, authorization: authorization,
                timeout: timeout, promise: promise)
        }
        // A cancelled caller stops waiting at once; a late answer then completes nothing.
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }

    /// Opens a stream, sends `request` as `POST /baton/v1/<operation>` and completes `promise`
    /// with the reply; the stream is reset when the answer does not come within `timeout`.
    private static func sendOnNewStream(
        _ request: Request, streams: NIOHTTP2Handler.StreamMultiplexer, clientID: String, authority: String,
        authorization: String?, timeout: TimeAmount, promise: EventLoopPromise<Reply>
    ) {
        let replyOpcode = request.opcode.reply
        streams.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http),
                    HTTP2ReplyHandler(replyOpcode: replyOpcode, promise: promise),
                ])
            }
        }.whenComplete { result in
            guard case .success(let stream) = result else {
                promise.fail(BatonClientError.connectionClosed)
                return
            }
            let timer = stream.eventLoop.scheduleTask(in: timeout) {
                promise.fail(BatonClientError.timedOut)
                stream.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            var headers = HTTPHeaders()
            headers.add(name: "host", value: authority)
            headers.add(name: "content-type", value: HTTP2Route.contentType)
            headers.add(name: HTTP2Route.clientIDHeader, value: clientID)
            if let authorization { headers.add(name: "authorization", value: authorization) }
            var body = stream.allocator.buffer(capacity: 64)
            request.encodeBody(into: &body)
            headers.add(name: "content-length", value: "\(body.readableBytes)")
            let head = HTTPRequestHead(version: .http2, method: .POST, uri: HTTP2Route.path(request.opcode), headers: headers)
            stream.write(HTTPClientRequestPart.head(head), promise: nil)
            stream.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            stream.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { _ in
                promise.fail(BatonClientError.connectionClosed)
            }
        }
    }

    var isActive: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }
}

/// A client id as the `baton-client-id` header spells it: 16 hex digits.
private func hexID(_ id: ClientID) -> String {
    let hex = String(id.rawValue, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
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
