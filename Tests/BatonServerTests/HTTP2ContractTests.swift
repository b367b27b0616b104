import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@testable import BatonServer

/// PROTOCOL.md §12 in raw frames, where a client written from the document found the node breaking
/// it (issue 19, item 10): flow-control violations, and the idle timeout.
@Suite(.heavy, .timeLimit(.minutes(2))) struct HTTP2ContractTests {
    func withH2Node(_ configure: @escaping (inout NodeConfiguration) -> Void = { _ in }, _ body: (TestNode, Int) async throws -> Void) async throws {
        try await withNode({
            $0.http2Port = 0
            $0.maxFrameSize = 4096
            configure(&$0)
        }) { node in
            try await body(node, try #require(node.server.http2Port))
        }
    }

    /// Sends a ping on `stream` of `h2`, and checks that it is answered 200 with a PONG and no GOAWAY:
    /// the connection carries on.
    func expectPing(_ h2: RawHTTP2, stream: UInt32) async throws {
        let frames = try await offPool {
            h2.request("ping", stream: stream, endStream: true)
            return h2.frames { $0.stream == stream && $0.type == RawHTTP2.Frame.data && $0.flags & 1 != 0 }
        }
        #expect(!frames.contains { $0.type == RawHTTP2.Frame.goAway }, "GOAWAY after a stream error")
        let body = frames.filter { $0.type == RawHTTP2.Frame.data && $0.stream == stream }.flatMap(\.payload)
        #expect(body.count == 8, "no PONG on stream \(stream): \(frames.map(\.type))")
    }

    /// A stream's window is never refilled (a body fits in it): DATA past it is a stream error,
    /// RST_STREAM FLOW_CONTROL_ERROR, and the connection and its other streams carry on. Before, the
    /// node reset the stream and then closed the connection without a GOAWAY.
    @Test func dataPastAStreamsWindowResetsThatStreamOnly() async throws {
        try await withH2Node { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.request("job_add", stream: 1, endStream: false, clientID: "1")
            // The window is 65,535 bytes (maximum frame size 4096 + 1, at least 65,535): one byte more.
            for _ in 0..<3 { h2.data([UInt8](repeating: 0, count: 16_384), stream: 1, endStream: false) }
            h2.data([UInt8](repeating: 0, count: 16_384 - 1), stream: 1, endStream: false)
            h2.data([0], stream: 1, endStream: false)
            let frames = try await offPool { h2.frames { $0.type == RawHTTP2.Frame.rstStream || $0.type == RawHTTP2.Frame.goAway } }
            #expect(RawHTTP2.errorCode(on: 1, in: frames) == .frameTooLarge, "the body over the limit is answered first")
            let reset = frames.last
            #expect(reset?.type == RawHTTP2.Frame.rstStream && reset?.stream == 1, "\(frames.map(\.type))")
            #expect(reset?.errorCode == RawHTTP2.flowControlError)
            try await expectPing(h2, stream: 3)
        }
    }

    /// A WINDOW_UPDATE that takes the connection's window past 2^31 - 1 is a connection error: GOAWAY
    /// FLOW_CONTROL_ERROR, then the node closes the connection; other connections carry on.
    @Test func aWindowPastTheLimitEndsTheConnectionWithGoAway() async throws {
        try await withH2Node { node, port in
            let h2 = try RawHTTP2(port: port)
            h2.windowUpdate(stream: 0, increment: 0x7FFF_FFFF)
            let frames = try await offPool { h2.frames { _ in false } }  // to the close
            let goAway = frames.first { $0.type == RawHTTP2.Frame.goAway }
            #expect(goAway?.errorCode == RawHTTP2.flowControlError, "\(frames.map(\.type))")
            let other = try RawHTTP2(port: port)
            try await expectPing(other, stream: 1)
        }
    }

    /// A header block over the 16 KiB header list (in HEADERS and CONTINUATION frames) is a
    /// connection error: GOAWAY PROTOCOL_ERROR, then the close; other connections carry on.
    @Test func headersOverTheLimitEndTheConnectionWithGoAway() async throws {
        try await withH2Node { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.send(HTTP2FrameWriter.request("ping", stream: 1, endStream: true, extra: [("x-big", String(repeating: "x", count: 20_000))]))
            let frames = try await offPool { h2.frames { _ in false } }  // to the close
            let goAway = frames.first { $0.type == RawHTTP2.Frame.goAway }
            #expect(goAway?.errorCode == RawHTTP2.protocolError, "\(frames.map(\.type))")
            #expect(!frames.contains { $0.type == RawHTTP2.Frame.data && $0.stream == 1 }, "the request was answered")
            try await expectPing(try RawHTTP2(port: port), stream: 1)
        }
    }

    /// `http2MaxConcurrentStreams` is the SETTINGS the node sends and keeps: a stream past it is
    /// refused (RST_STREAM REFUSED_STREAM, safe to send again), and the others are answered.
    @Test func aStreamPastTheLimitIsRefused() async throws {
        try await withH2Node({ $0.http2MaxConcurrentStreams = 2 }) { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.request("ping", stream: 1, endStream: false)
            h2.request("ping", stream: 3, endStream: false)
            h2.request("ping", stream: 5, endStream: false)
            let reset = try await offPool { h2.frames { $0.type == RawHTTP2.Frame.rstStream || $0.type == RawHTTP2.Frame.goAway } }.last
            #expect(reset?.type == RawHTTP2.Frame.rstStream && reset?.stream == 5, "\(String(describing: reset))")
            #expect(reset?.errorCode == RawHTTP2.refusedStream)
            h2.data([], stream: 1, endStream: true)
            let answered = try await offPool { h2.frames { $0.stream == 1 && $0.type == RawHTTP2.Frame.data } }
            #expect(answered.last?.payload.count == 8, "no PONG on stream 1")
        }
    }

    /// A connection that sends nothing for the idle timeout, with no command waiting, is closed: a
    /// request whose body never ended is answered 408 IDLE_TIMEOUT, then GOAWAY (NO_ERROR) naming it.
    /// Before, the idle timeout never fired on HTTP/2.
    @Test func anIdleConnectionIsAnsweredAndClosed() async throws {
        try await withH2Node({ $0.idleTimeoutMilliseconds = 1000 }) { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.request("job_add", stream: 1, endStream: false, clientID: "1")
            h2.data([0, 0], stream: 1, endStream: false)
            let frames = try await offPool { h2.frames { _ in false } }  // to the close
            #expect(RawHTTP2.errorCode(on: 1, in: frames) == .idleTimeout, "\(frames.map(\.type))")
            let goAway = frames.first { $0.type == RawHTTP2.Frame.goAway }
            #expect(goAway?.errorCode == RawHTTP2.noError)
            #expect(goAway.map { Array($0.payload[0..<4]) } == [0, 0, 0, 1], "GOAWAY names stream 1 as the last taken")
        }
    }

    /// A connection whose acquire is waiting is not idle, however long the wait.
    @Test func aWaitingStreamKeepsTheConnectionOpen() async throws {
        try await withH2Node({ $0.idleTimeoutMilliseconds = 1000 }) { node, port in
            let holder = node.client("holder")
            _ = try await holder.acquireLock("k", ttl: .seconds(30))
            var configuration = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "h2")
            configuration.transport = .http2
            let h2 = BatonClient(configuration: configuration)
            // Waits 3 s behind the holder, 3 idle timeouts: busy at the end, not a closed connection.
            let outcome = try await h2.acquireLock("k", ttl: .seconds(1), wait: .seconds(3))
            guard case .busy = outcome else {
                Issue.record("expected busy, got \(outcome)")
                return
            }
            await h2.shutdown()
            await holder.shutdown()
        }
    }

    /// With authentication off a token is never needed: a Bearer token no user holds is ignored, as a
    /// refused AUTH on TCP leaves the connection serving (issue 35). Before, the request was refused
    /// UNAUTHENTICATED on HTTP/2 only.
    @Test func anUnknownBearerTokenIsIgnoredWithAuthenticationOff() async throws {
        try await withH2Node { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.send(HTTP2FrameWriter.request("ping", stream: 1, endStream: true, extra: [("authorization", "Bearer no-such-token")]))
            let frames = try await offPool { h2.frames { $0.stream == 1 && $0.type == RawHTTP2.Frame.data && $0.flags & 1 != 0 } }
            #expect(RawHTTP2.errorCode(on: 1, in: frames) == nil, "refused: \(frames.map(\.type))")
            let body = frames.filter { $0.type == RawHTTP2.Frame.data && $0.stream == 1 }.flatMap(\.payload)
            #expect(body.count == 8, "no PONG: \(frames.map(\.type))")
        }
    }

    /// A WINDOW_UPDATE that takes one stream's window past 2^31 - 1 is a stream error (RFC 9113
    /// §6.9.1): RST_STREAM FLOW_CONTROL_ERROR on it, and the connection carries on (PROTOCOL.md §12).
    @Test func aStreamWindowPastTheLimitResetsThatStreamOnly() async throws {
        try await withH2Node { _, port in
            let h2 = try RawHTTP2(port: port)
            h2.request("job_add", stream: 1, endStream: false, clientID: "1")
            h2.windowUpdate(stream: 1, increment: 0x7FFF_FFFF)
            let frames = try await offPool { h2.frames { $0.type == RawHTTP2.Frame.rstStream || $0.type == RawHTTP2.Frame.goAway } }
            let reset = frames.last
            #expect(reset?.type == RawHTTP2.Frame.rstStream && reset?.stream == 1, "\(frames.map(\.type))")
            #expect(reset?.errorCode == RawHTTP2.flowControlError)
            try await expectPing(h2, stream: 3)
        }
    }
}
