import BatonClient
import BatonProtocol
import BatonTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A member of an older build speaks protocol version 2 only: it refuses a HELLO of version 3 with
/// UNSUPPORTED_VERSION and closes, and names its leader only in NOT_LEADER's message. The Swift client
/// asks again with version 2, and follows that message to the leader (PROTOCOL.md §4 and §6).
@Suite(.timeLimit(.minutes(1))) struct VersionFallbackTests {
    /// An older build's follower, as it behaved on the wire: every HELLO but version 2 refused and the
    /// connection closed; every other request answered NOT_LEADER, version 2 layout.
    final class OldFollower: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let leader: String
        let hellos: NIOLockedValueBox<[UInt16]>
        private var received = ByteBuffer()
        private var decoder = FrameDecoder()

        init(leader: String, hellos: NIOLockedValueBox<[UInt16]>) {
            self.leader = leader
            self.hellos = hellos
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
            var out = context.channel.allocator.buffer(capacity: 256)
            var close = false
            while !close, let frame = try? decoder.decode(buffer: &received) {
                guard frame.opcode == .hello else {
                    out.writeReply(
                        .error(.notLeader, "node old is not the leader; leader=\(leader)"), requestID: frame.requestID, version: 2)
                    continue
                }
                let version = frame.body.getInteger(at: frame.body.readerIndex, as: UInt16.self) ?? 0
                hellos.withLockedValue { $0.append(version) }
                if version == 2 {
                    let hello = HelloReply(
                        version: 2, nodeID: "old", serverTime: Timestamp(milliseconds: 1), maxFrameSize: 1 << 20,
                        maxKeyLength: 256, minTTL: 100, maxTTL: 86_400_000, idleTimeout: 300_000)
                    out.writeReply(.hello(hello), requestID: frame.requestID, version: 2)
                } else {
                    out.writeReply(
                        .error(.unsupportedVersion, "protocol version \(version) is not supported; this node speaks 2"),
                        requestID: frame.requestID, version: 2)
                    close = true
                }
            }
            received.discardReadBytes()
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            if close { context.close(promise: nil) }
        }
    }

    @Test func aClientFallsBackToVersionTwoAndFollowsTheMessage() async throws {
        try await withNode { node in
            let hellos = NIOLockedValueBox<[UInt16]>([])
            let leader = "127.0.0.1:\(node.port)"
            let old = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(OldFollower(leader: leader, hellos: hellos))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let port = try #require(old.localAddress?.port)
            let client = BatonClient(configuration: BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "v3"))
            let (id, _) = try await client.addJob(JobSpec(type: "fallback"))
            await client.shutdown()
            try await old.close()
            #expect(hellos.withLockedValue { $0 } == [batonProtocolVersion, 2], "the client asked the old member with \(hellos.withLockedValue { $0 })")
            let checker = node.client()
            #expect(try await checker.getJob(id).type == "fallback")
            await checker.shutdown()
        }
    }
}
