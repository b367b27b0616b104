import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP proxy on loopback between clients and a node that can hold back what the node sends: the
/// answers stop reaching the clients (as from a paused leader, or a slow network) until `release()`,
/// which passes them on in order. Requests always go through.
final class HoldingProxy: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let server: any Channel
    private let gate: NIOLockedValueBox<Gate>

    struct Gate {
        var holding = false
        /// Bytes held back, in arrival order, with the client connection each is for.
        var parked: [(to: any Channel, bytes: ByteBuffer)] = []
    }

    private init(port: Int, group: MultiThreadedEventLoopGroup, server: any Channel, gate: NIOLockedValueBox<Gate>) {
        self.port = port
        self.group = group
        self.server = server
        self.gate = gate
    }

    static func start(to target: Int) async throws -> HoldingProxy {
        // One event loop: every relay and `release` run on it, so nothing overtakes what was held.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let gate = NIOLockedValueBox(Gate())
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                ClientBootstrap(group: client.eventLoop)
                    .channelInitializer { node in node.pipeline.addHandler(Relay(to: client, gate: gate)) }
                    .connect(host: "127.0.0.1", port: target)
                    .flatMap { node in client.pipeline.addHandler(Relay(to: node, gate: nil)) }
                    .flatMap { client.setOption(.autoRead, value: true) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HoldingProxy(port: server.localAddress!.port!, group: group, server: server, gate: gate)
    }

    /// From now on the node's answers are held back.
    func hold() async throws {
        try await server.eventLoop.submit { self.gate.withLockedValue { $0.holding = true } }.get()
    }

    /// Passes on what was held, in order, and stops holding.
    func release() async throws {
        try await server.eventLoop.submit {
            let parked = self.gate.withLockedValue { gate in
                gate.holding = false
                defer { gate.parked = [] }
                return gate.parked
            }
            for (channel, bytes) in parked { channel.writeAndFlush(bytes, promise: nil) }
        }.get()
    }

    func close() async throws {
        try await server.close()
        try await group.shutdownGracefully()
    }

    /// Copies what one side sends to the other; the node's side goes through the gate.
    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let gate: NIOLockedValueBox<Gate>?

        init(to peer: any Channel, gate: NIOLockedValueBox<Gate>?) {
            self.peer = peer
            self.gate = gate
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            let held = gate?.withLockedValue { gate in
                if gate.holding { gate.parked.append((peer, bytes)) }
                return gate.holding
            } ?? false
            if !held { peer.writeAndFlush(bytes, promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
