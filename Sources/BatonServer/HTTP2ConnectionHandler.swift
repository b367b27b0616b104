import BatonProtocol
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 connection carrying Baton requests, one per stream (PROTOCOL.md, "HTTP/2").
///
/// It works on the connection's frames directly, with no child channel per stream: a request is
/// small and short-lived, and a channel with its own pipeline per request cost more than the
/// request itself (profiled: retain/release in the stream multiplexer dominated). NIOHTTP2Handler
/// in front of it still owns the connection state machine, HPACK, header validation and
/// connection-level flow control. Stream-level windows never need refilling: the initial window is
/// larger than the largest body accepted, and a stream carries one body. The connection-level window
/// is refilled here as request bytes arrive.
///
/// Answers produced while reading a batch of frames are flushed together when the batch ends, as
/// on TCP. A waiting acquire or claim keeps its stream open until it is answered.
final class HTTP2ConnectionHandler: ChannelInboundHandler, ReplySink, AnswerFlushing {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// A request being received or waiting for its answer.
    private struct Stream {
        var opcode: Opcode?
        var clientID: ClientID?
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
    private var streams: [HTTP2StreamID: Stream] = [:]
    /// The newest stream a request came in on: GOAWAY names it, so the peer knows that every later
    /// stream was never seen and is safe to send again.
    private var lastStreamID = HTTP2StreamID(0)
    /// The clients that spoke on this connection (each is detached when it closes, as on TCP), and
    /// what each request becomes.
    private var session = ClientSession(identity: .perRequest)
    private var reading = false
    private var flushPending = false
    private var flushQueued = false
    /// Whether the connection still carries requests (after it closes, nothing more is written).
    private var phase = Phase.open

    enum Phase {
        case open
        case closed
    }
    /// Request bytes received since the connection's flow-control window was last refilled.
    private var unacknowledgedBytes = 0

    init(runtime: NodeRuntime) {
        self.runtime = runtime
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        runtime.register(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase == .open {
            phase = .closed
            runtime.unregister(self)
            runtime.sinkClosed(self)
            for client in session.clients { runtime.clientDisconnected(client) }
            streams.removeAll()
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if streams[frame.streamID] == nil {
                lastStreamID = max(lastStreamID, frame.streamID)
                admit(frame.streamID, headers.headers)
            }
            if headers.endStream { finish(frame.streamID) }
        case .data(let data):
            refillConnectionWindow(after: data.data.readableBytes + (data.paddingBytes ?? 0))
            if case .byteBuffer(var chunk) = data.data {
                receive(&chunk, on: frame.streamID)
            }
            if data.endStream { finish(frame.streamID) }
        case .rstStream:
            // An answer that comes later is dropped; a command still waiting leaves its line.
            if let stream = streams.removeValue(forKey: frame.streamID), !stream.answered, let waiting = stream.mayWait {
                runtime.withdraw(waiting.client, sequence: waiting.sequence)
            }
        default:
            break  // SETTINGS, PING, WINDOW_UPDATE, GOAWAY: NIOHTTP2Handler has dealt with them
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flush()
        context.fireChannelReadComplete()
    }

    /// Connection errors (bad preface, oversized or malformed headers, flow-control violations):
    /// NIOHTTP2Handler has sent GOAWAY with the error code; close, or the peer would wait forever.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is NIOHTTP2Errors.StreamClosed || error is NIOHTTP2Errors.NoSuchStream else {
            context.close(promise: nil)
            return
        }
        // A stream the peer reset while its answer was on the way: only that stream is gone.
    }

    /// Without a stream multiplexer nobody else refills the connection-level window: hand back what
    /// was received once it reaches half the default window, or the peer stalls after 64 KiB.
    private func refillConnectionWindow(after bytes: Int) {
        unacknowledgedBytes += bytes
        guard unacknowledgedBytes >= 32_768, let context else { return }
        let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledgedBytes))
        context.write(wrapOutboundOut(update), promise: nil)
        unacknowledgedBytes = 0
        flushPending = true
    }

    // MARK: Requests

    /// Checks method, path, content type and client id before any body arrives.
    private func admit(_ id: HTTP2StreamID, _ headers: HPACKHeaders) {
        streams[id] = Stream(started: .now())
        let path = headers.first(name: ":path") ?? ""
        guard let opcode = HTTP2Route.opcode(path: Substring(path)) else {
            refuse(id, .unknownOpcode, "no operation at \(path); operations are POST \(HTTP2Route.pathPrefix)<operation>")
            return
        }
        streams[id]?.opcode = opcode
        guard headers.first(name: ":method") == "POST" else {
            refuse(id, .invalidArgument, "use POST", status: .methodNotAllowed)
            return
        }
        guard let type = headers.first(name: "content-type"), Self.isBatonContentType(type) else {
            refuse(id, .invalidArgument, "content-type must be \(HTTP2Route.contentType)", status: .unsupportedMediaType)
            return
        }
        if let text = headers.first(name: HTTP2Route.clientIDHeader) {
            guard let raw = UInt64(text, radix: 16), raw != 0 else {
                refuse(id, .invalidArgument, "\(HTTP2Route.clientIDHeader) must be a non-zero 64-bit hex number")
                return
            }
            streams[id]?.clientID = ClientID(raw)
        }
    }

    /// `application/x-baton`, possibly with parameters; the exact string is checked first (profiled:
    /// trimming through Foundation cost 8% of a request).
    private static func isBatonContentType(_ value: String) -> Bool {
        if value == HTTP2Route.contentType { return true }
        let type = value.split(separator: ";", maxSplits: 1).first ?? ""
        return type.trimmingCharacters(in: .whitespaces).lowercased() == HTTP2Route.contentType
    }

    private func receive(_ chunk: inout ByteBuffer, on id: HTTP2StreamID) {
        guard let stream = streams[id], !stream.answered else { return }
        let size = (stream.body?.readableBytes ?? 0) + chunk.readableBytes
        guard size <= runtime.configuration.maxFrameSize else {
            refuse(id, .frameTooLarge, "body larger than \(runtime.configuration.maxFrameSize) bytes")
            return
        }
        if stream.body == nil {
            streams[id]?.body = chunk  // the usual case: the whole body in one DATA frame, no copy
        } else {
            streams[id]?.body?.writeBuffer(&chunk)
        }
    }

    /// The request is complete: decode it and hand it to the runtime.
    private func finish(_ id: HTTP2StreamID) {
        guard let stream = streams[id] else { return }
        guard !stream.answered, let opcode = stream.opcode else {
            streams[id] = nil
            return
        }
        streams[id]?.ended = true
        let requestID = RequestID(UInt32(Int(id)))
        switch session.receive(opcode: opcode, body: stream.body ?? ByteBuffer(), named: stream.clientID).0 {
        case .hello(let joined, _):
            if let joined { runtime.clientConnected(joined) }
            answer(id, .hello(runtime.helloReply(version: session.version)))
        case .ping:
            answer(id, .pong(serverTime: runtime.now))
        case .read(let query):
            if let reply = runtime.read(query, requestID: requestID, from: self, started: stream.started) {
                answer(id, reply)
            }
        case .command(let client, let sequence, let command, let joined):
            if joined { runtime.clientConnected(client) }
            if command.mayWait { streams[id]?.mayWait = (client, sequence) }
            runtime.execute(command, sequence: sequence, client: client, requestID: requestID, from: self, started: stream.started)
        case .refuse(let code, let message), .refuseAndClose(let code, let message):
            refuse(id, code, message)  // a stream is one request: the connection carries on
        }
    }

    // MARK: Answers

    /// Answers a request that needed no command, and counts it.
    private func answer(_ id: HTTP2StreamID, _ reply: Reply) {
        if let opcode = streams[id]?.opcode, let started = streams[id]?.started {
            runtime.metrics.recordRequest(opcode, reply: reply, since: started)
        }
        write(reply, on: id)
    }

    private func refuse(_ id: HTTP2StreamID, _ code: ErrorCode, _ message: String, status: HTTPResponseStatus? = nil) {
        if let opcode = streams[id]?.opcode, let started = streams[id]?.started {
            runtime.metrics.recordRequest(opcode, reply: .error(code, message), since: started)
        }
        write(.error(code, message), on: id, status: status)
    }

    /// The runtime's answer to a command (counted by the runtime).
    func deliver(_ reply: Reply, requestID: RequestID) {
        write(reply, on: HTTP2StreamID(Int(requestID.rawValue)))
        guard !reading, !flushQueued else { return }
        flushQueued = true
        runtime.flushQueue.enqueue(self)
    }

    func flushAnswers() {
        flushQueued = false
        flush()
    }

    /// Writes HEADERS and DATA (end of stream) for `reply`; flushed at the end of the read batch.
    private func write(_ reply: Reply, on id: HTTP2StreamID, status: HTTPResponseStatus? = nil) {
        guard let context, phase == .open, let stream = streams[id] else { return }  // reset by the peer meanwhile
        var body = context.channel.allocator.buffer(capacity: 64)
        reply.encodeBody(into: &body, version: HTTP2Route.bodyVersion)
        var headers = HPACKHeaders()
        if case .error(let e) = reply {
            headers.add(name: ":status", value: String((status ?? HTTP2Mapping.status(for: e.code)).code))
            headers.add(name: HTTP2Route.errorHeader, value: e.code.name)
            if let leader = e.leader, let address = runtime.http2Address(ofMemberAt: leader) {
                headers.add(name: HTTP2Route.leaderHeader, value: address)
            }
        } else {
            headers.add(name: ":status", value: "200")
        }
        headers.add(name: "content-type", value: HTTP2Route.contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers)))), promise: nil)
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: true)))),
            promise: nil)
        flushPending = true
        if stream.ended {
            streams[id] = nil
        } else {
            streams[id]?.answered = true  // the rest of the request's frames are ignored
        }
    }

    private func flush() {
        guard flushPending, let context, phase == .open else { return }
        flushPending = false
        context.flush()
    }

    /// Answers every open request with SHUTTING_DOWN (retriable, as on TCP), sends GOAWAY naming the
    /// last stream taken, then closes once that is written.
    func shutDown() {
        guard let context, phase == .open else { return }
        let message = "node \(runtime.configuration.nodeID) is shutting down"
        for (id, stream) in streams.sorted(by: { $0.key < $1.key }) where !stream.answered {
            refuse(id, .shuttingDown, message)
        }
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }
}
