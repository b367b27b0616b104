import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Testing

@testable import BatonServer

/// POSTs `body` to `/baton/v1/<operation>` with curl over h2c; returns the HTTP status and the reply body.
func curlPost(port: Int, operation: String, body: [UInt8], headers: [String] = ["content-type: application/x-baton"])
    async throws -> (status: Int, body: [UInt8])
{
    let dir = FileManager.default.temporaryDirectory
    let input = dir.appendingPathComponent("h2-in-\(UUID())")
    let output = dir.appendingPathComponent("h2-out-\(UUID())")
    defer {
        try? FileManager.default.removeItem(at: input)
        try? FileManager.default.removeItem(at: output)
    }
    try Data(body).write(to: input)
    var args = ["-s", "--http2-prior-knowledge", "-X", "POST", "--data-binary", "@\(input.path)", "-o", output.path, "-w", "%{http_code} %{http_version}"]
    for h in headers { args += ["-H", h] }
    args.append("http://127.0.0.1:\(port)/baton/v1/\(operation)")
    let r = try await run("curl", args)
    let parts = r.out.split(separator: " ")
    #expect(parts.last == "2", "curl did not speak HTTP/2: \(r.out)")
    let bytes = (try? Data(contentsOf: output)).map { [UInt8]($0) } ?? []
    return (Int(parts.first ?? "") ?? 0, bytes)
}

func bodyOf(_ request: Request) -> [UInt8] {
    var b = ByteBuffer()
    request.encodeBody(into: &b)
    return Array(b.readableBytesView)
}

@Suite(.heavy, .timeLimit(.minutes(2))) struct HTTP2Tests {
    func withH2Node(_ configure: @escaping (inout NodeConfiguration) -> Void = { _ in }, _ body: (TestNode, Int) async throws -> Void) async throws {
        try await withNode({
            $0.http2Port = 0
            configure(&$0)
        }) { node in
            try await body(node, try #require(node.server.http2Port))
        }
    }

    /// Every golden request body, sent by curl: each answer is a well-formed reply of its request's kind,
    /// or a well-formed error whose HTTP status matches its code.
    @Test func goldenRequestsOverCurl() async throws {
        try await withH2Node { node, port in
            let frames = try goldenRequestFrames()
            #expect(frames.count == Opcode.requests.count)
            for (name, opcode, body) in frames {
                let r = try await curlPost(
                    port: port, operation: opcode.name.lowercased(), body: body,
                    headers: ["content-type: application/x-baton", "baton-client-id: 1122334455667788"])
                if r.status == 200 {
                    let reply = try Reply.decode(opcode: opcode.reply, body: ByteBuffer(bytes: r.body))
                    #expect(reply.opcode == opcode.reply, "\(name)")
                    if opcode == .lockAcquire {
                        guard case .lockAcquired(.granted) = reply else {
                            Issue.record("the golden acquire was not granted: \(reply)")
                            continue
                        }
                    }
                } else {
                    guard case .error(let e) = try Reply.decode(opcode: .error, body: ByteBuffer(bytes: r.body)) else {
                        Issue.record("\(name): no error body")
                        continue
                    }
                    #expect(Int(HTTP2Mapping.status(for: e.code).code) == r.status, "\(name): \(e) came with \(r.status)")
                }
            }
            // The golden force release ran after the acquire: the lock is free again for TCP clients.
            let c = node.client()
            #expect(try await c.getLock("reports/daily") == nil)
            await c.shutdown()
        }
    }

    /// Starts nghttp (verbose) with an acquire of "k" that waits up to 10 s behind `holder`; returns
    /// once the node has it in line.
    func nghttpWaitingAcquire(port: Int, behind holder: BatonClient) async throws -> Task<(status: Int32, out: String), any Error> {
        let acquire = bodyOf(.command(SequenceNumber(1), .acquireLock(key: "k", owner: "h2", ttl: 5000, wait: 10_000)))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("h2-acq-\(UUID())")
        try Data(acquire).write(to: file)
        let waiting = Task {
            defer { try? FileManager.default.removeItem(at: file) }
            return try await run("nghttp", ["-v", "-H", ":method: POST", "-H", "content-type: application/x-baton",
                                      "-H", "baton-client-id: 00000000000000aa", "-d", file.path, "http://127.0.0.1:\(port)/baton/v1/lock_acquire"])
        }
        try await holder.waitForWaiters(1, on: "k")
        return waiting
    }

    @Test func nghttpAndAWaitingAcquireThatKeepsItsStreamOpen() async throws {
        try await withH2Node { node, port in
            let c = node.client("holder")
            guard case .granted(let token, _, _) = try await c.acquireLock("k", ttl: .seconds(10)) else { Issue.record("the premise failed: the lock was not granted"); return }
            let waiting = try await nghttpWaitingAcquire(port: port, behind: c)
            try await c.releaseLock("k", token: token)
            let r = try await waiting.value
            #expect(r.status == 0 && r.out.contains(":status: 200"), "\(r.out)")
            #expect(try await c.getLock("k")?.owner == "h2")
            await c.shutdown()
        }
    }

    /// A node that stops answers a waiting request with SHUTTING_DOWN (503, retriable) and sends
    /// GOAWAY naming that request's stream as the last one taken, not "every stream".
    @Test func shutdownAnswersOpenStreamsAndNamesTheLastInGoAway() async throws {
        let node = try await TestNode.start { $0.http2Port = 0 }
        let port = try #require(node.server.http2Port)
        let c = node.client("holder")
        guard case .granted = try await c.acquireLock("k", ttl: .seconds(10)) else { Issue.record("the premise failed: the lock was not granted"); return }
        let waiting = try await nghttpWaitingAcquire(port: port, behind: c)
        try await node.stop()
        await c.shutdown()
        let out = try await waiting.value.out
        #expect(out.contains(":status: 503") && out.contains("baton-error: SHUTTING_DOWN"), "\(out)")
        // nghttp -v: "send HEADERS frame <length=…, flags=…, stream_id=13>" … "recv GOAWAY frame <…>",
        // then "(last_stream_id=13, error_code=NO_ERROR(0x00), …)"
        func number(after marker: String, in text: some StringProtocol) -> Int? {
            text.components(separatedBy: marker).dropFirst().first.flatMap { Int($0.prefix(while: \.isNumber)) }
        }
        let lines = out.split(separator: "\n")
        let request = lines.filter { $0.contains("send HEADERS frame") }.compactMap { number(after: "stream_id=", in: $0) }
        // The GOAWAY received (nghttp may send one of its own as it exits), its details on the next line.
        let last = zip(lines, lines.dropFirst()).filter { $0.0.contains("recv GOAWAY") }.compactMap { number(after: "last_stream_id=", in: $0.1) }
        #expect(request.count == 1 && last == request, "request streams \(request), GOAWAY last \(last)\n\(out)")
    }

    @Test func h2loadWithAHundredConcurrentStreamsHasNoFailures() async throws {
        try await withH2Node { node, port in
            let c = node.client()
            guard case .granted(let token, _, _) = try await c.acquireLock("bench", ttl: .seconds(60)) else { Issue.record("the premise failed: the lock was not granted"); return }
            let renew = bodyOf(.command(SequenceNumber(0), .renewLock(key: "bench", token: token, ttl: 30_000)))
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("h2-renew-\(UUID())")
            try Data(renew).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            // 10,000 requests on one connection: 230 KB of bodies, far past the 64 KiB connection window.
            let r = try await run("h2load", ["-n", "10000", "-c", "1", "-m", "100", "-H", "content-type: application/x-baton",
                                       "-H", "baton-client-id: 2", "-d", file.path, "http://127.0.0.1:\(port)/baton/v1/lock_renew"])
            #expect(r.out.contains("10000 succeeded, 0 failed, 0 errored"), "\(r.out)")
            #expect(r.out.contains("10000 2xx"))
            await c.shutdown()
        }
    }

    /// A waiting acquire whose stream the client resets (RST_STREAM, the connection kept open) leaves
    /// the line: when the holder lets go, the lock is free, not granted to a request nobody reads.
    @Test func aResetStreamWithdrawsItsWaitingAcquire() async throws {
        try await withH2Node { node, port in
            let tcp = node.client("tcp-holder")
            guard case .granted(let token, _, _) = try await tcp.acquireLock("w", ttl: .seconds(30)) else {
                Issue.record("not granted")
                return
            }
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            defer { channel.close(promise: nil) }
            let stream = HTTP2StreamID(1)
            let headers: HPACKHeaders = [
                ":method": "POST", ":scheme": "http", ":authority": "127.0.0.1:\(port)",
                ":path": HTTP2Route.path(.lockAcquire), "content-type": HTTP2Route.contentType,
                HTTP2Route.clientIDHeader: "7e57",
            ]
            let body = bodyOf(.command(SequenceNumber(1), .acquireLock(key: "w", owner: "h2", ttl: 30_000, wait: 30_000)))
            channel.write(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers))), promise: nil)
            try await channel.writeAndFlush(
                HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(ByteBuffer(bytes: body)), endStream: true)))
            ).get()
            try await eventually("the HTTP/2 acquire waits", every: .milliseconds(10)) { try await tcp.getLock("w")?.waiters.count == 1 }

            try await channel.writeAndFlush(HTTP2Frame(streamID: stream, payload: .rstStream(.cancel))).get()
            try await eventually("the reset acquire stops waiting", every: .milliseconds(10)) { try await tcp.getLock("w")?.waiters.count == 0 }
            try await tcp.releaseLock("w", token: token)
            #expect(try await tcp.getLock("w") == nil)  // free: nobody was granted it
            #expect(channel.isActive)  // only the stream was reset
            await tcp.shutdown()
        }
    }

    /// The client library's HTTP/2 transport: the same API, the same answers, waits included.
    @Test func clientOverHTTP2() async throws {
        try await withH2Node { node, port in
            var configuration = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "h2-client")
            configuration.transport = .http2
            let h2 = BatonClient(configuration: configuration)
            let tcp = node.client("tcp-client")
            guard case .granted(let token, _, _) = try await h2.acquireLock("k", ttl: .seconds(10)) else {
                Issue.record("not granted")
                return
            }
            #expect(try await tcp.getLock("k")?.owner == "h2-client")
            try await h2.renewLock("k", token: token, ttl: .seconds(10))
            await #expect(throws: BatonClientError.self) { try await h2.renewLock("k", token: FencingToken(token.rawValue + 7), ttl: .seconds(1)) }
            // A waiting acquire over HTTP/2 is granted when the TCP holder lets go.
            guard case .granted(let t2, _, _) = try await tcp.acquireLock("w", ttl: .seconds(10)) else { Issue.record("the premise failed: the lock was not granted"); return }
            async let waited = h2.acquireLock("w", ttl: .seconds(5), wait: .seconds(5))
            try await eventually("the HTTP/2 acquire waits", every: .milliseconds(10)) { try await tcp.getLock("w")?.waiters.count == 1 }
            try await tcp.releaseLock("w", token: t2)
            guard case .granted(let t3, _, _) = try await waited else {
                Issue.record("the waiting acquire was not granted")
                return
            }
            #expect(t3 > t2)
            // Jobs, with many requests in flight on one connection.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<50 { group.addTask { _ = try await h2.addJob(JobSpec(type: "h2", payload: [UInt8(i)])) } }
                try await group.waitForAll()
            }
            var done = 0
            while let job = try await h2.claimJob(types: ["h2"]) {
                try await h2.completeJob(job.id, token: job.token, result: job.payload)
                done += 1
            }
            #expect(done == 50)
            #expect(try await tcp.listJobs(JobFilter(type: "h2", state: .completed)).jobs.count == 50)
            await h2.shutdown()
            await tcp.shutdown()
        }
    }

    @Test func badInputGetsTheDocumentedAnswer() async throws {
        try await withH2Node({ $0.maxFrameSize = 4096 }) { node, port in
            let ping = bodyOf(.ping)
            // unknown path
            #expect(try await curlPost(port: port, operation: "frobnicate", body: ping).status == 404)
            // wrong content type
            let wrong = try await curlPost(port: port, operation: "ping", body: ping, headers: ["content-type: application/json"])
            #expect(wrong.status == 415)
            guard case .error(let e) = try Reply.decode(opcode: .error, body: ByteBuffer(bytes: wrong.body)) else { Issue.record("expected an error answer"); return }
            #expect(e.code == .invalidArgument)
            // a body larger than the maximum frame
            let big = try await curlPost(port: port, operation: "job_add", body: [UInt8](repeating: 0, count: 5000))
            #expect(big.status == 413)
            // The largest body is the one the largest TCP frame carries (issue 35; before, 6 bytes more).
            #expect(try await curlPost(port: port, operation: "job_add", body: [UInt8](repeating: 0, count: 4091)).status == 413)
            #expect(try await curlPost(port: port, operation: "job_add", body: [UInt8](repeating: 0, count: 4090)).status == 400)
            // a command without a client id
            let add = bodyOf(.command(SequenceNumber(1), .addJob(JobSpec(type: "t"))))
            #expect(try await curlPost(port: port, operation: "job_add", body: add).status == 400)
            // a malformed body
            #expect(try await curlPost(port: port, operation: "lock_get", body: [0, 200, 1]).status == 400)
            // oversized headers (over the 16 KiB header list and the 16 KiB frame): GOAWAY, the node carries on
            let huge = String(repeating: "x", count: 20_000)
            let r = try await run("timeout", ["10", "nghttp", "-v", "-H", ":method: POST", "-H", "x-big: \(huge)",
                                        "-H", "content-type: application/x-baton", "http://127.0.0.1:\(port)/baton/v1/ping"])
            #expect(r.out.contains("recv GOAWAY") && !r.out.contains(":status: 200"), "\(r.out.suffix(500))")
            // a bad connection preface: the connection is closed, the node carries on
            let fd = try rawConnect(port: port)
            _ = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            var buf = [UInt8](repeating: 0, count: 4096)
            var total = 0
            while true {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                total += n
            }
            close(fd)
            #expect(total < 4096)  // at most a GOAWAY, then the close
            #expect(try await curlPost(port: port, operation: "ping", body: ping).status == 200)
            let c = node.client()
            _ = try await c.serverTime()
            await c.shutdown()
        }
    }
}

/// The request frames in Protocol/golden: (file name, opcode, body after the 10-byte header).
func goldenRequestFrames() throws -> [(name: String, opcode: Opcode, body: [UInt8])] {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocol/golden")
    return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".request.hex") }.sorted()
        .map { name in
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let bytes = text.split(separator: "\n").flatMap { line -> [UInt8] in
                let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                return code.split(separator: " ").compactMap { UInt8($0, radix: 16) }
            }
            return (name, Opcode(rawValue: bytes[4]), Array(bytes[10...]))
        }
}
