import BatonProtocol
import BatonTestSupport
import NIOCore
import NIOPosix
import Testing

@testable import BatonBenchKit
@testable import BatonServer

/// A cluster member that does not lead: it answers HELLO, and every other request with NOT_LEADER
/// naming `leader` (nil: no leader known).
final class FollowerStub: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let leader: String?
    private var received = ByteBuffer()
    private var decoder = FrameDecoder()

    init(leader: String?) { self.leader = leader }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        var out = context.channel.allocator.buffer(capacity: 256)
        while let frame = try? decoder.decode(buffer: &received) {
            if frame.opcode == .hello {
                let hello = HelloReply(
                    version: batonProtocolVersion, nodeID: "follower", serverTime: Timestamp(milliseconds: 1), maxFrameSize: 1 << 20,
                    maxKeyLength: 256, minTTL: 100, maxTTL: 86_400_000, idleTimeout: 300_000)
                out.writeReply(.hello(hello), requestID: frame.requestID)
            } else {
                let hint = leader.map { "; leader=\($0)" } ?? "; no leader is known yet"
                out.writeReply(
                    .error(ErrorReply(.notLeader, "node follower is not the leader\(hint)", leader: leader ?? "")),
                    requestID: frame.requestID)
            }
        }
        received.discardReadBytes()
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }
}

@Suite(.heavy, .timeLimit(.minutes(1))) struct RedirectTests {
    @Test func notLeaderRepliesBecomeRedirects() throws {
        var dialect = BatonDialect()
        for (message, leader) in [("node b is not the leader; leader=10.0.0.1:7700", "10.0.0.1:7700"), ("node b is not the leader; no leader is known yet", nil)] {
            var buffer = ByteBuffer()
            buffer.writeReply(.error(ErrorReply(.notLeader, message, leader: leader ?? "")), requestID: RequestID(1))
            var pending = [0]
            let read = try #require(try dialect.read(&buffer, pending: &pending))
            #expect(read.outcome == .redirect(leader: leader))
        }
        #expect(parseEndpoint("127.0.0.1:7702")! == ("127.0.0.1", 7702))
        #expect(parseEndpoint("[::1]:7702")! == ("[::1]", 7702))
        for bad in ["", "7702", ":7702", "host:", "host:0", "host:70000", "host:x"] { #expect(parseEndpoint(bad) == nil, "\(bad)") }
    }

    /// Every connection opened at a member that does not lead is reopened at the leader it names,
    /// and the run measures there without errors.
    @Test func aRunFollowsNotLeaderToTheLeader() async throws {
        let report = try await withNode { port in
            let leader = "127.0.0.1:\(port)"
            let follower = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FollowerStub(leader: leader)) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            var config = BenchmarkConfiguration()
            config.port = follower.localAddress!.port!
            config.connections = 4
            config.warmup = .milliseconds(100)
            config.duration = .seconds(3)  // long enough for cycles on a loaded machine
            defer { follower.close(promise: nil) }
            return try await runBenchmark(config)
        }
        #expect(report.redirects == 4)
        #expect(report.cycles > 0)
        #expect(report.errors == 0, "\(report.errorSamples)")
        #expect(report.text.contains("redirects 4"))
    }
}
