import BatonCore
import BatonProtocol
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// One client connection: cuts the byte stream into frames, turns them into calls on the node
/// runtime, and answers into frames. Answers produced while reading a batch of frames go out in one
/// write, flushed when the batch ends.
///
/// Frames are cut here rather than by a `ByteToMessageHandler` in front: a frame then reaches its
/// request decoder without being wrapped for the pipeline, and a read that holds whole frames (the
/// usual case) is decoded straight out of NIO's receive buffer.
final class ClientConnectionHandler: ChannelInboundHandler, ReplySink, AnswerFlushing {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let runtime: NodeRuntime
    private var context: ChannelHandlerContext?
    /// Who the client is, and what its requests become.
    private var session = ClientSession(identity: .perConnection)
    private var logger: Logger
    /// Answers not yet written.
    private var outgoing: ByteBuffer
    /// Commands of this connection still waiting (an acquire in line, a claim with a wait).
    private var waiting = 0
    /// Where the connection is in its life.
    private var phase = Phase.open
    /// Inside a batch of reads (answers wait for `channelReadComplete`).
    private var reading = false
    private var flushQueued = false
    /// When the connection last sent something.
    private var lastActivity = NIODeadline.now()
    private var decoder: FrameDecoder
    /// The start of a frame whose rest has not arrived yet.
    private var partial: ByteBuffer?
    private(set) var peerDescription = "?"
    /// The peer's address without its port, for the per-host caps.
    private var host = "?"
    /// Counted by the runtime's admission (it was not refused as it opened).
    private var admitted = false
    /// Before HELLO (and AUTH, with authentication on): small frames only, and a deadline.
    private var pending = true
    private let openedAt = NIODeadline.now()
    /// When the first byte of the frame now arriving came (nil: no frame is part-way).
    private var partialSince: NIODeadline?
    /// The largest frame a pending connection may send.
    static let maxPendingFrameSize = 64 * 1024

    enum Phase {
        /// Frames are read and answered.
        case open
        /// The stream broke the framing rules: its error is on the way out, and what still arrives
        /// is dropped until the connection closes.
        case draining
        /// Nothing more is read or written.
        case closed
    }

    init(runtime: NodeRuntime, allocator: ByteBufferAllocator) {
        self.runtime = runtime
        self.logger = runtime.logger
        self.outgoing = allocator.buffer(capacity: 4096)
        self.decoder = FrameDecoder(maxFrameSize: min(runtime.configuration.maxFrameSize, Self.maxPendingFrameSize))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        runtime.register(self)
        peerDescription = context.remoteAddress.map { "\($0)" } ?? "?"
        host = context.remoteAddress?.ipAddress ?? peerDescription
        logger[metadataKey: "peer"] = "\(peerDescription)"
    }

    func channelActive(context: ChannelHandlerContext) {
        switch runtime.admit(from: host) {
        case .admit:
            admitted = true
        case .refuse(let why):
            send(.error(.quotaExceeded, why), requestID: .node)
            closeAfterFlush()
        }
        context.fireChannelActive()
    }

    /// The context holds this handler and this handler the context: let go of it when the pipeline
    /// removes the handler (the channel closed), or neither is ever freed (LeakSanitizer found it).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// With client certificates required (`tls.clientCAFile`), the certificate's common name is the
    /// connection's user until an AUTH says otherwise (docs/operating.md, "Securing a cluster").
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, runtime.configuration.tls?.clientCAFile != nil,
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let name = CertificateUser.name(of: certificate)
        {
            session.principal = Principal(user: name, token: .certificate)
            logger[metadataKey: "user"] = "\(LogText.escaped(name))"
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .closed {
            flush()
            phase = .closed
            if admitted { runtime.connectionLeft(from: host, stillPending: pending) }
            runtime.connectionClosed(self, client: session.client)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard phase == .open else { return }
        reading = true
        var input = unwrapInboundIn(data)
        let ownsInput = partial != nil
        if var head = partial {
            partial = nil
            head.writeBuffer(&input)
            input = head
        }
        var progressed = false
        do {
            while let frame = try decoder.decode(buffer: &input) {
                progressed = true
                handle(frame)
            }
        } catch {
            var reply = error as? ErrorReply ?? ErrorReply(.malformedFrame, "\(error)")
            if pending, reply.code == .frameTooLarge {
                reply.message += " (before HELLO and AUTH, frames may be at most \(Self.maxPendingFrameSize) bytes)"
            }
            framingError(reply, context: context)
            return
        }
        // The deadline of a frame runs from its first byte.
        if progressed || partialSince == nil { partialSince = input.readableBytes > 0 ? .now() : nil }
        guard input.readableBytes > 0 else { return }
        if ownsInput {
            // Already our own buffer: keep growing it (a large frame arrives over many reads).
            input.discardReadBytes()
            partial = input
        } else {
            // Copied out of NIO's receive buffer, so NIO can reuse it.
            var head = context.channel.allocator.buffer(capacity: input.readableBytes)
            head.writeBuffer(&input)
            partial = head
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        lastActivity = .now()
        flush()
    }

    private func handle(_ frame: Frame) {
        let started = NIODeadline.now()
        guard frame.requestID != RequestID.node else {
            // Its answer could not be told from the node's own frames (PROTOCOL.md §1): not applied.
            answer(.error(.invalidArgument, "request id 0 is reserved for the node's own frames; the request was not applied"), to: frame, started: started)
            return
        }
        let (decision, request) = session.receive(opcode: frame.opcode, body: frame.body)
        switch decision {
        case .hello(let joined, let left):
            if let left { runtime.clientDisconnected(left) }
            if let joined {
                runtime.clientConnected(joined)
                logger[metadataKey: "client.id"] = "\(joined)"
                if case .hello(let hello)? = request { logger[metadataKey: "client.name"] = "\(LogText.escaped(hello.clientName))" }
                logger.debug("hello")
            }
            answer(.hello(runtime.helloReply(version: session.version)), to: frame, started: started)
        case .ping:
            answer(.pong(serverTime: runtime.now), to: frame, started: started)
        case .authenticate(let token):
            switch runtime.authenticate(token, peer: peerDescription, client: session.client) {
            case .success(let principal):
                session.principal = principal
                logger[metadataKey: "user"] = "\(LogText.escaped(principal.user))"
                answer(.authenticated(user: principal.user), to: frame, started: started)
            case .failure(let refusal):
                session.principal = nil
                logger[metadataKey: "user"] = nil
                answer(.error(refusal), to: frame, started: started)
            }
        case .read(let query):
            if let reply = runtime.read(query, requestID: frame.requestID, from: self, started: started, by: session.principal) {
                answer(reply, to: frame, started: started)
            } else {
                waiting += 1  // answered later, through `deliver`
            }
        case .command(let client, let sequence, let command, _):
            waiting += 1
            runtime.execute(
                command, sequence: sequence, client: client, requestID: frame.requestID, from: self, started: started,
                by: session.principal)
        case .refuse(let code, let message):
            answer(.error(code, message), to: frame, started: started)
        case .refuseAndClose(let code, let message):
            answer(.error(code, message), to: frame, started: started)
            closeAfterFlush()
        }
        if pending, session.client != nil, session.principal != nil || !runtime.authenticationRequired {
            pending = false
            if admitted { runtime.handshakeCompleted(from: host) }
            decoder = FrameDecoder(maxFrameSize: runtime.configuration.maxFrameSize)
        }
    }

    /// Closes the connection when it is still pending past its handshake deadline, or when the
    /// frame part-way in has taken too long (issue 33: silent and dribbling connections).
    func enforceDeadlines(now: NIODeadline) {
        guard phase == .open else { return }
        let handshake = TimeAmount.milliseconds(Int64(runtime.configuration.handshakeTimeoutMilliseconds))
        let frame = TimeAmount.milliseconds(Int64(runtime.configuration.frameTimeoutMilliseconds))
        let why: String
        if pending, now - openedAt > handshake {
            why = runtime.authenticationRequired
                ? "no HELLO and AUTH within \(runtime.configuration.handshakeTimeoutMilliseconds) ms of connecting"
                : "no HELLO within \(runtime.configuration.handshakeTimeoutMilliseconds) ms of connecting"
        } else if let since = partialSince, now - since > frame {
            why = "a frame took longer than \(runtime.configuration.frameTimeoutMilliseconds) ms to arrive"
        } else {
            return
        }
        logger.debug("closing connection", metadata: ["reason": "\(why)"])
        send(.error(.idleTimeout, why), requestID: .node)
        closeAfterFlush()
    }

    /// Answers a request right away and counts it.
    private func answer(_ reply: Reply, to frame: Frame, started: NIODeadline) {
        runtime.metrics.recordRequest(frame.opcode, reply: reply, since: started)
        send(reply, requestID: frame.requestID)
    }

    /// Queues an answer; it is written when the current batch of reads ends.
    func send(_ reply: Reply, requestID: RequestID) {
        guard phase != .closed else { return }
        outgoing.writeReply(reply, requestID: requestID, version: session.version)
    }

    /// Queues the answer to a command. Inside a read it goes out with the read's other answers;
    /// otherwise (after a log write, or when a wait is settled) with everything else answered in the
    /// same event-loop task.
    func deliver(_ reply: Reply, requestID: RequestID) {
        waiting -= 1
        send(reply, requestID: requestID)
        guard !reading, !flushQueued else { return }
        flushQueued = true
        runtime.flushQueue.enqueue(self)
    }

    func flushAnswers() {
        flushQueued = false
        flush()
    }

    private func flush() {
        guard let context, outgoing.readableBytes > 0, phase != .closed else { return }
        context.writeAndFlush(wrapOutboundOut(outgoing), promise: nil)
        // Usually the write went out at once and the storage is ours again: reuse it.
        outgoing.clear()
    }

    private func closeAfterFlush() {
        flush()
        context?.close(promise: nil)
    }

    /// Closes the connection if it sent nothing since `cutoff` and has no command waiting.
    func closeIfIdle(since cutoff: NIODeadline) {
        guard phase == .open, waiting == 0, lastActivity < cutoff else { return }
        logger.debug("closing idle connection")
        send(.error(.idleTimeout, "no request for \(runtime.configuration.idleTimeoutMilliseconds) ms"), requestID: .node)
        closeAfterFlush()
    }

    /// The stream cannot be trusted past a framing error: answer it, stop reading frames, close.
    private func framingError(_ error: ErrorReply, context: ChannelHandlerContext) {
        phase = .draining
        partial = nil
        reading = false
        logger.info("closing connection after a framing error", metadata: ["error": "\(LogText.escaped("\(error)"))"])
        send(.error(error.code, error.message), requestID: .node)
        flush()
        // Closing with unread bytes in the socket would reset the connection and could destroy the
        // error frame in flight. Finish writing, keep reading (and dropping) what comes, close soon after.
        context.close(mode: .output, promise: nil)
        context.eventLoop.scheduleTask(in: .seconds(2)) { [channel = context.channel] in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        closeAfterFlush()
    }

    /// Tells the client the node is going away, then closes.
    func shutDown() {
        send(.error(.shuttingDown, "node \(runtime.configuration.nodeID) is shutting down"), requestID: .node)
        closeAfterFlush()
    }
}
