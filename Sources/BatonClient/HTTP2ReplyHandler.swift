import BatonProtocol
import NIOCore
import NIOHTTP1

/// Reads the one reply on an HTTP/2 stream: a 200 carries the request's reply body, any other
/// status an error reply body (PROTOCOL.md, "HTTP/2"), and a NOT_LEADER its leader in a header.
final class HTTP2ReplyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let replyOpcode: Opcode
    private let promise: EventLoopPromise<Reply>
    private var status: HTTPResponseStatus?
    private var leader: String?
    private var body = ByteBuffer()

    init(replyOpcode: Opcode, promise: EventLoopPromise<Reply>) {
        self.replyOpcode = replyOpcode
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            leader = head.headers.first(name: HTTP2Route.leaderHeader)
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            do {
                let opcode: Opcode = status == .ok ? replyOpcode : .error
                var reply = try Reply.decode(opcode: opcode, body: body, version: HTTP2Route.bodyVersion)
                if case .error(var e) = reply, e.code == .notLeader {
                    e.leader = leader ?? ""
                    reply = .error(e)
                }
                promise.succeed(reply)
            } catch {
                promise.fail(BatonClientError.unexpectedReply("HTTP \(status?.code ?? 0) with an unreadable body: \(error)"))
            }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(BatonClientError.connectionClosed)  // a no-op once answered
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(BatonClientError.connectionClosed)
        context.close(promise: nil)
    }
}
