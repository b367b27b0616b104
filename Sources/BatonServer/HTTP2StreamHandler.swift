import BatonProtocol
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 connection: remembers which client ids spoke on it (so a client whose last connection
/// closes is detached, as on TCP) and says goodbye with GOAWAY when the node shuts down.
final class HTTP2Connection {
    private let runtime: NodeRuntime
    private let channel: any Channel
    private var clients: Set<ClientID> = []

    init(runtime: NodeRuntime, channel: any Channel) {
        self.runtime = runtime
        self.channel = channel
        runtime.register(self)
    }

    func noteClient(_ client: ClientID) {
        if clients.insert(client).inserted { runtime.clientConnected(client) }
    }

    func closed() {
        runtime.unregister(self)
        for client in clients { runtime.clientDisconnected(client) }
        clients.removeAll()
    }

    /// GOAWAY (no error), then close once it is written.
    func shutDown() {
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        channel.writeAndFlush(goAway).whenComplete { [channel] _ in channel.close(promise: nil) }
    }
}

/// Closes an HTTP/2 connection after a connection error (bad preface, oversized or malformed
/// headers, flow-control violations). NIOHTTP2 has already sent GOAWAY with the error code by the
/// time the error reaches this handler; without the close the peer would wait forever.
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One HTTP/2 stream carrying one Baton request. A waiting acquire or claim keeps the stream open
/// until it is answered.
final class HTTP2StreamHandler: ChannelInboundHandler, ReplySink {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: NodeRuntime
    private let connection: HTTP2Connection
    private var context: ChannelHandlerContext?
    private var opcode: Opcode?
    private var clientID: ClientID?
    private var body = ByteBuffer()
    private var refused = false
    private var answered = false
    private var started = NIODeadline.now()

    init(runtime: NodeRuntime, connection: HTTP2Connection) {
        self.runtime = runtime
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.sinkClosed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            started = .now()
            admit(head)
        case .body(var chunk):
            guard !refused else { return }
            if body.readableBytes + chunk.readableBytes > runtime.configuration.maxFrameSize {
                refuse(.frameTooLarge, "body larger than \(runtime.configuration.maxFrameSize) bytes")
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard !refused, let opcode else { return }
            handle(opcode)
        }
    }

    /// Checks method, path, content type and client id before any body arrives.
    private func admit(_ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        guard path.hasPrefix(HTTP2Mapping.pathPrefix), let op = HTTP2Mapping.opcodes[String(path.dropFirst(HTTP2Mapping.pathPrefix.count))] else {
            refuse(.unknownOpcode, "no operation at \(path); operations are POST \(HTTP2Mapping.pathPrefix)<operation>")
            return
        }
        opcode = op
        guard head.method == .POST else {
            refuse(.invalidArgument, "use POST", status: .methodNotAllowed)
            return
        }
        let type = head.headers.first(name: "content-type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        guard type == HTTP2Mapping.contentType else {
            refuse(.invalidArgument, "content-type must be \(HTTP2Mapping.contentType)", status: .unsupportedMediaType)
            return
        }
        if let id = head.headers.first(name: HTTP2Mapping.clientIDHeader) {
            guard let raw = UInt64(id, radix: 16), raw != 0 else {
                refuse(.invalidArgument, "\(HTTP2Mapping.clientIDHeader) must be a non-zero 64-bit hex number")
                return
            }
            clientID = ClientID(raw)
        }
    }

    private func handle(_ opcode: Opcode) {
        let request: Request
        do {
            request = try Request.decode(opcode: opcode, body: body)
        } catch {
            refuse(error.code, error.message)
            return
        }
        switch request {
        case .hello(let hello):
            guard hello.version == batonProtocolVersion else {
                refuse(.unsupportedVersion, "protocol version \(hello.version) is not supported; this node speaks \(batonProtocolVersion)")
                return
            }
            connection.noteClient(hello.clientID)
            respond(.hello(runtime.helloReply))
        case .ping:
            respond(.pong(serverTime: runtime.clock.now()))
        case .query(let query):
            respond(runtime.query(query))
        case .command(let sequence, let command):
            guard let clientID else {
                refuse(.helloRequired, "commands need the \(HTTP2Mapping.clientIDHeader) header")
                return
            }
            connection.noteClient(clientID)
            runtime.execute(command, sequence: sequence, client: clientID, requestID: RequestID(0), from: self, started: started)
        }
    }

    func deliver(_ reply: Reply, requestID: RequestID) {
        write(reply)
    }

    private func respond(_ reply: Reply) {
        if let opcode { runtime.metrics.recordRequest(opcode, reply: reply, since: started) }
        write(reply)
    }

    private func refuse(_ code: ErrorCode, _ message: String, status: HTTPResponseStatus? = nil) {
        refused = true
        if let opcode { runtime.metrics.recordRequest(opcode, reply: .error(code, message), since: started) }
        write(.error(code, message), status: status)
    }

    private func write(_ reply: Reply, status: HTTPResponseStatus? = nil) {
        guard let context, !answered else { return }
        answered = true
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: HTTP2Mapping.contentType)
        let code: HTTPResponseStatus
        if case .error(let e) = reply {
            code = status ?? HTTP2Mapping.status(for: e.code)
            headers.add(name: HTTP2Mapping.errorHeader, value: e.code.name)
        } else {
            code = .ok
        }
        var out = context.channel.allocator.buffer(capacity: 64)
        reply.encodeBody(into: &out)
        headers.add(name: "content-length", value: "\(out.readableBytes)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: code, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(out))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
