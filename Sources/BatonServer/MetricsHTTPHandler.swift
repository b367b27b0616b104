import NIOCore
import NIOHTTP1

/// Serves `GET /metrics` in the Prometheus text format; anything else is 404 (405 for other methods).
/// Runs on the node's event loop, so it reads the node's state directly when refreshing the gauges.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: NodeRuntime
    private var head: HTTPRequestHead?

    init(runtime: NodeRuntime) {
        self.runtime = runtime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            if head.method != .GET {
                respond(context, head, status: .methodNotAllowed, body: "only GET\n")
            } else if path == "/metrics" {
                runtime.refreshMetrics()
                var body = runtime.metrics.registry.emitToString()
                ScheduleExposition.write(runtime.node.machine.scheduleCounts(), into: &body)
                respond(context, head, status: .ok, body: body, contentType: "text/plain; version=0.0.4; charset=utf-8")
            } else {
                respond(context, head, status: .notFound, body: "try /metrics\n")
            }
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus, body: String,
        contentType: String = "text/plain; charset=utf-8"
    ) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(buffer.readableBytes)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }
}
