import BatonCore
import BatonProtocol
import CNghttp2
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// One HTTP/2 connection carrying Baton requests, one per stream (PROTOCOL.md, "HTTP/2"), on
/// libnghttp2 (`NGHTTP2Session`): the bytes of the connection go to nghttp2, which reports each
/// request's headers and body; answers go back through it.
///
/// nghttp2 owns the protocol: the connection and stream state machines, HPACK, flow control in both
/// directions, the stream limit, and GOAWAY for a connection error. This handler keeps what Baton
/// adds: the routes and content type, the header-size limit, the body limit, the session of each
/// client, waiting commands withdrawn on reset, the idle timeout and the goodbye on shutdown.
///
/// Answers produced while reading a batch of bytes are written together when the batch ends, as on
/// TCP. A waiting acquire or claim keeps its stream open until it is answered.
final class HTTP2ConnectionHandler: ChannelInboundHandler, ReplySink, AnswerFlushing, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Most bytes of header names and values a request may carry (SETTINGS_MAX_HEADER_LIST_SIZE).
    static let maxHeaderListSize = 16 * 1024

    /// A request being received or waiting for its answer.
    private struct Stream {
        var opcode: Opcode?
        var clientID: ClientID?
        /// The `authorization` header's bearer token.
        var bearer: String?
        var body: ByteBuffer?
        /// The answer went out (a refusal may go out before the body ends; the rest is ignored).
        var answered = false
        /// The peer ended its side of the stream.
        var ended = false
        var started: NIODeadline
        /// A command that may wait (an acquire or a claim with a wait), handed to the runtime and
        /// not yet answered: withdrawn if the peer resets the stream.
        var mayWait: (client: ClientID, sequence: SequenceNumber)?
    }

    private let runtime: NodeRuntime
    private var context: ChannelHandlerContext?
    private var session: NGHTTP2Session!
    private var streams: [Int32: Stream] = [:]
    /// The header block being received: HTTP/2 sends each one whole, never two interleaved.
    private var head = HTTP2RequestHead()
    /// The clients that spoke on this connection (each is detached when it closes, as on TCP), and
    /// what each request becomes.
    private var clientSession = ClientSession(identity: .perRequest)
    private var outgoing = ByteBuffer()
    private var reading = false
    private var flushQueued = false
    private var lastActivity = NIODeadline.now()
    /// The last token this connection's requests showed and whom it proved: a client sends the same
    /// token on every stream, and it is hashed once. The state machine checks the principal again
    /// as it applies each command, so a token removed since is refused all the same.
    private var lastBearer: (token: String, principal: Principal)?
    /// The peer's address without its port, for the per-host caps (`ConnectionAdmission`).
    private var host = "?"
    /// Counted by the runtime's admission.
    private var admitted = false
    /// No request taken yet (with authentication on: none with a known token).
    private var pending = true
    private let openedAt = NIODeadline.now()
    private var peerAddress = "?"
    /// The user a client certificate proved (`tls.clientCAFile`), for requests without a token.
    private var certificatePrincipal: Principal?
    var peerDescription: String { peerAddress }
    /// Whether the connection still carries requests (after it closes, nothing more is written).
    private var phase = Phase.open
    /// The close was asked for (after the last write); `channelInactive` follows.
    private var closeIssued = false

    enum Phase {
        case open
        /// GOAWAY is queued (shutdown, idle, or a connection error): close once it is written.
        case closing
        /// The channel is inactive.
        case closed
    }

    init(runtime: NodeRuntime) {
        self.runtime = runtime
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let configuration = runtime.configuration
        // Each stream carries one body of at most maxFrameSize bytes: with a larger initial window a
        // request body never waits for a window update, and an oversized one is refused first.
        let window = min(max(configuration.maxFrameSize + 1, 65_535), Int(Int32.max))
        session = NGHTTP2Session(
            delegate: self,
            settings: [
                (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), UInt32(configuration.http2MaxConcurrentStreams)),
                (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(Self.maxHeaderListSize)),
                (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(window)),
            ])
        outgoing = context.channel.allocator.buffer(capacity: 4096)
        peerAddress = context.remoteAddress.map { "\($0)" } ?? "?"
        runtime.register(self)
    }

    /// The context holds this handler and this handler the context: let go of it when the pipeline
    /// removes the handler (the channel closed), or neither is ever freed (LeakSanitizer found it).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        host = context.remoteAddress?.ipAddress ?? peerAddress
        switch runtime.admit(from: host) {
        case .admit:
            admitted = true
            flush()  // the server's SETTINGS
        case .refuse:
            phase = .closing
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    /// Closes the connection when no request of it has been taken (one with a token the node knows,
    /// with authentication on) within the handshake deadline: GOAWAY, answering what is open with
    /// `IDLE_TIMEOUT`.
    func enforceDeadlines(now: NIODeadline) {
        guard phase == .open, pending,
            now - openedAt > .milliseconds(Int64(runtime.configuration.handshakeTimeoutMilliseconds))
        else { return }
        goAway(answering: .idleTimeout, "no request within \(runtime.configuration.handshakeTimeoutMilliseconds) ms of connecting")
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .closed {
            phase = .closed
            if admitted { runtime.connectionLeft(from: host, stillPending: pending) }
            runtime.unregister(self)
            runtime.sinkClosed(self)
            for client in clientSession.clients { runtime.clientDisconnected(client) }
            streams.removeAll()
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard phase != .closed else { return }
        reading = true
        lastActivity = .now()
        if let error = session.receive(unwrapInboundIn(data)) {
            // A bad preface, flooding, a broken frame: nghttp2 queued GOAWAY where it still can.
            runtime.logger.info("closing HTTP/2 connection", metadata: ["error": "\(error)"])
            phase = .closing
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, runtime.configuration.tls?.clientCAFile != nil,
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let name = CertificateUser.name(of: certificate)
        {
            certificatePrincipal = Principal(user: name, token: .certificate)
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Requests, as nghttp2 reports them

    func streamOpened(_ id: Int32) {
        streams[id] = Stream(started: .now())
        head = HTTP2RequestHead()
    }

    func header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        head.add(name: name, value: value)
        guard head.bytes <= Self.maxHeaderListSize else {
            phase = .closing  // GOAWAY PROTOCOL_ERROR (PROTOCOL.md §12)
            return false
        }
        return true
    }

    /// Checks method, path, content type and client id before any body arrives.
    func headersEnded(_ id: Int32) {
        guard streams[id] != nil else { return }
        guard let opcode = head.opcode else {
            refuse(id, .unknownOpcode, "no operation at \(head.path); operations are POST \(HTTP2Route.pathPrefix)<operation>")
            return
        }
        streams[id]?.opcode = opcode
        guard head.isPost else {
            refuse(id, .invalidArgument, "use POST", status: .methodNotAllowed)
            return
        }
        guard head.isBatonContentType == true else {
            refuse(id, .invalidArgument, "content-type must be \(HTTP2Route.contentType)", status: .unsupportedMediaType)
            return
        }
        switch head.clientID {
        case .valid(let client): streams[id]?.clientID = client
        case .invalid: refuse(id, .invalidArgument, "\(HTTP2Route.clientIDHeader) must be a non-zero 64-bit hex number")
        case nil: break
        }
        switch head.bearer {
        case .token(let token): streams[id]?.bearer = token
        case .invalid: refuse(id, .unauthenticated, "authorization must be 'Bearer <token>'")
        case nil: break
        }
    }

    func body(_ id: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[id], !stream.answered else { return }
        let size = (stream.body?.readableBytes ?? 0) + bytes.count
        // The body a TCP frame of the maximum size carries: its length counts 6 header bytes too.
        let maxBody = runtime.configuration.maxFrameSize - Frame.headerAfterLength
        guard size <= maxBody else {
            refuse(id, .frameTooLarge, "body larger than \(maxBody) bytes (the maximum frame size less its 6-byte header)")
            return
        }
        if stream.body == nil {
            var body = ByteBuffer()
            body.reserveCapacity(bytes.count)
            body.writeBytes(bytes)
            streams[id]?.body = body
        } else {
            streams[id]?.body?.writeBytes(bytes)
        }
    }

    /// The request is complete: decode it and hand it to the runtime.
    func requestEnded(_ id: Int32) {
        guard let stream = streams[id] else { return }
        streams[id]?.ended = true
        guard !stream.answered, let opcode = stream.opcode else { return }
        let requestID = RequestID(UInt32(id))
        var principal = certificatePrincipal
        if let token = stream.bearer {
            if let last = lastBearer, last.token == token {
                principal = last.principal
            } else {
                switch runtime.authenticate(token, peer: peerAddress, client: stream.clientID) {
                case .success(let p):
                    principal = p
                    lastBearer = (token, p)
                case .failure where !runtime.authenticationRequired:
                    break  // authentication off: a token no user holds is ignored, as after a refused AUTH on TCP
                case .failure(let refusal):
                    answer(id, .error(refusal))  // with the leader it names, when a follower redirects
                    return
                }
            }
        }
        if pending, principal != nil || !runtime.authenticationRequired {
            pending = false
            if admitted { runtime.handshakeCompleted(from: host) }
        }
        switch clientSession.receive(opcode: opcode, body: stream.body ?? ByteBuffer(), named: stream.clientID).0 {
        case .hello(let joined, _):
            if let joined { runtime.clientConnected(joined) }
            answer(id, .hello(runtime.helloReply(version: clientSession.version)))
        case .ping:
            answer(id, .pong(serverTime: runtime.now))
        case .authenticate(let token):
            // A stream is one request: AUTH only checks the token (requests carry theirs in a header).
            switch runtime.authenticate(token, peer: peerAddress, client: stream.clientID) {
            case .success(let p): answer(id, .authenticated(user: p.user))
            case .failure(let refusal): answer(id, .error(refusal))
            }
        case .read(let query):
            if let reply = runtime.read(query, requestID: requestID, from: self, started: stream.started, by: principal) {
                answer(id, reply)
            }
        case .command(let client, let sequence, let command, let joined):
            if joined { runtime.clientConnected(client) }
            if command.mayWait { streams[id]?.mayWait = (client, sequence) }
            runtime.execute(
                command, sequence: sequence, client: client, requestID: requestID, from: self, started: stream.started, by: principal)
        case .refuse(let code, let message), .refuseAndClose(let code, let message):
            refuse(id, code, message)  // a stream is one request: the connection carries on
        }
    }

    /// The stream is gone. An answer that comes later is dropped; a command still waiting (the peer
    /// reset the stream) leaves its line.
    func streamClosed(_ id: Int32, errorCode: UInt32) {
        if let stream = streams.removeValue(forKey: id), !stream.answered, let waiting = stream.mayWait {
            runtime.withdraw(waiting.client, sequence: waiting.sequence)
        }
    }

    // MARK: Answers

    /// Answers a request that needed no command, and counts it.
    private func answer(_ id: Int32, _ reply: Reply) {
        if let opcode = streams[id]?.opcode, let started = streams[id]?.started {
            runtime.metrics.recordRequest(opcode, reply: reply, since: started)
        }
        write(reply, on: id)
    }

    private func refuse(_ id: Int32, _ code: ErrorCode, _ message: String, status: HTTPResponseStatus? = nil) {
        if let opcode = streams[id]?.opcode, let started = streams[id]?.started {
            runtime.metrics.recordRequest(opcode, reply: .error(code, message), since: started)
        }
        write(.error(code, message), on: id, status: status)
    }

    /// The runtime's answer to a command (counted by the runtime).
    func deliver(_ reply: Reply, requestID: RequestID) {
        write(reply, on: Int32(requestID.rawValue))
        guard !reading, !flushQueued else { return }
        flushQueued = true
        runtime.flushQueue.enqueue(self)
    }

    func flushAnswers() {
        flushQueued = false
        flush()
    }

    /// Hands `reply` to nghttp2 as HEADERS and DATA ending the stream; written at the end of the batch.
    private func write(_ reply: Reply, on id: Int32, status: HTTPResponseStatus? = nil) {
        guard phase != .closed, let stream = streams[id], !stream.answered else { return }  // reset meanwhile
        streams[id]?.answered = true  // the rest of the request's frames are ignored
        guard case .error(let e) = reply else {
            session.respond(id, status: 200, headers: []) { reply.encodeBody(into: &$0, version: HTTP2Route.bodyVersion) }
            return
        }
        var headers = [(name: HTTP2Route.errorHeader, value: e.code.name)]
        if let leader = e.leader, let address = runtime.http2Address(ofMemberAt: leader) {
            headers.append((HTTP2Route.leaderHeader, address))
        }
        session.respond(id, status: Int((status ?? HTTP2Mapping.status(for: e.code)).code), headers: headers) {
            reply.encodeBody(into: &$0, version: HTTP2Route.bodyVersion)
        }
    }

    /// Writes what nghttp2 has to send; closes once a closing session has nothing left to do.
    private func flush() {
        guard let context, phase != .closed, !closeIssued else { return }
        if !session.drain(into: &outgoing) { phase = .closing }
        let closing = phase == .closing || !session.isAlive
        if closing { closeIssued = true }
        guard outgoing.readableBytes > 0 else {
            if closing { context.close(promise: nil) }
            return
        }
        let written = context.writeAndFlush(wrapOutboundOut(outgoing))
        // Usually the write went out at once and the storage is ours again: reuse it.
        outgoing.clear()
        if closing {
            // The GOAWAY must reach the peer before the close.
            written.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }

    /// Closes the connection if it received nothing since `cutoff` and has no command waiting: a
    /// request whose body never ended gets `408` + `IDLE_TIMEOUT`, then GOAWAY (PROTOCOL.md §12).
    func closeIfIdle(since cutoff: NIODeadline) {
        guard phase == .open, lastActivity < cutoff, !streams.values.contains(where: { $0.mayWait != nil && !$0.answered })
        else { return }
        goAway(answering: .idleTimeout, "no request for \(runtime.configuration.idleTimeoutMilliseconds) ms")
    }

    /// Answers every open request with SHUTTING_DOWN (retriable, as on TCP), sends GOAWAY naming the
    /// last stream taken, then closes once that is written.
    func shutDown() {
        guard phase == .open else { return }
        goAway(answering: .shuttingDown, "node \(runtime.configuration.nodeID) is shutting down")
    }

    /// Answers every request still open with `code`, in stream order, then GOAWAY (`NO_ERROR`, the
    /// newest stream taken) and the close once it is written.
    private func goAway(answering code: ErrorCode, _ message: String) {
        for (id, stream) in streams.sorted(by: { $0.key < $1.key }) where !stream.answered {
            refuse(id, code, message)
        }
        session.goAway()
        phase = .closing
        flush()
    }
}
