import BatonClient
import BatonProtocol
import BatonTestSupport
import NIOCore
import Testing

/// Every malformed thing a client can send gets a clear error, and the node and other connections stay healthy.
@Suite(.timeLimit(.minutes(1))) struct BadInputTests {
    /// After each bad input, a separate well-behaved client must still be served.
    func assertHealthy(_ node: TestNode) async throws {
        let client = node.client("healthy")
        let a = try await client.acquireLock("health/\(UInt64.random(in: 0...UInt64.max))", ttl: .seconds(1))
        guard case .granted = a else { Issue.record("healthy client not served"); return }
        await client.shutdown()
    }

    @Test func requestBeforeHello() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.send(.query(.getLock(key: "a")), id: 5)
            let r = try await raw.nextReply()
            #expect(r.id == 5 && errorCode(r.reply) == .helloRequired)
            try await raw.send(.command(SequenceNumber(1), .releaseLock(key: "a", token: FencingToken(1))), id: 6)
            #expect(errorCode(try await raw.nextReply().reply) == .helloRequired)
            // The connection stays usable: HELLO, then the same request works.
            try await raw.hello(id: 7)
            try await raw.send(.query(.getLock(key: "a")), id: 8)
            #expect(try await raw.nextReply().reply == .lock(nil))
            try await raw.send(.ping, id: 9)
            guard case .pong = try await raw.nextReply().reply else { Issue.record("no pong"); return }
            await raw.close()
            try await assertHealthy(node)
        }
    }

    /// PROTOCOL.md §4: before HELLO every request but PING is refused with HELLO_REQUIRED, whatever
    /// its opcode or body. An unknown opcode was answered UNKNOWN_OPCODE there (issue 19, item 5).
    @Test func anUnknownOpcodeOrABadBodyBeforeHelloIsRefusedWithHelloRequired() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            var b = ByteBuffer()
            b.writeFrame(opcode: Opcode(rawValue: 0x6A), requestID: RequestID(3)) { _ in }
            b.writeFrame(opcode: .lockGet, requestID: RequestID(4)) { $0.writeBytes([0, 200, 0x61]) }
            try await raw.send(b)
            let unknown = try await raw.nextReply()
            #expect(unknown.id == 3 && errorCode(unknown.reply) == .helloRequired)
            let malformed = try await raw.nextReply()
            #expect(malformed.id == 4 && errorCode(malformed.reply) == .helloRequired)
            try await raw.hello(id: 5)
            try await raw.send(.ping, id: 6)
            #expect(try await raw.nextReply().id == 6)
            await raw.close()
        }
    }

    /// PROTOCOL.md §1: request id 0 is the node's own. A request that carries it is refused with
    /// INVALID_ARGUMENT (id 0, a code no connection-level frame has) and not applied; the connection
    /// stays open. It was answered and applied (issue 19, item 4).
    @Test func requestIDZeroIsRefusedAndNotApplied() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            try await raw.send(.command(SequenceNumber(1), .acquireLock(key: "zero", owner: "raw", ttl: Milliseconds(60_000), wait: Milliseconds(0))), id: 0)
            let refused = try await raw.nextReply()
            #expect(refused.id == 0 && errorCode(refused.reply) == .invalidArgument)
            try await raw.send(.query(.getLock(key: "zero")), id: 2)
            let lock = try await raw.nextReply()
            #expect(lock.id == 2 && lock.reply == .lock(nil))
            // The sequence was not used up either: the same command with a valid id is applied.
            try await raw.send(.command(SequenceNumber(1), .acquireLock(key: "zero", owner: "raw", ttl: Milliseconds(60_000), wait: Milliseconds(0))), id: 3)
            let granted = try await raw.nextReply()
            guard case .lockAcquired(.granted) = granted.reply else {
                Issue.record("the retry with a valid request id was not granted: \(granted.reply)")
                return
            }
            await raw.close()
            try await assertHealthy(node)
        }
    }

    /// Client id 0 is reserved on TCP as on HTTP/2 (`baton-client-id` refuses it): HELLO with it is
    /// refused with INVALID_ARGUMENT and leaves the connection without a client (issue 19, item 7).
    @Test func helloWithClientIDZeroIsRefused() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.send(.hello(Hello(version: batonProtocolVersion, clientID: ClientID(0), clientName: "zero")), id: 1)
            let refused = try await raw.nextReply()
            #expect(refused.id == 1 && errorCode(refused.reply) == .invalidArgument)
            try await raw.send(.query(.getLock(key: "a")), id: 2)
            #expect(errorCode(try await raw.nextReply().reply) == .helloRequired)
            try await raw.hello(id: 3)
            try await raw.send(.query(.getLock(key: "a")), id: 4)
            #expect(try await raw.nextReply().reply == .lock(nil))
            await raw.close()
        }
    }

    /// Version 1, whose lease answers had no `lease_left_ms`: a client of it would count its leases
    /// wrongly, so it is refused with a message that names the versions spoken. (A later version is
    /// answered with the newest this node speaks: `helloAgreesOnAVersion`.)
    @Test(arguments: [UInt16(1), 0])
    func unsupportedVersionClosesTheConnection(version: UInt16) async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.send(.hello(Hello(version: version, clientID: ClientID(1), clientName: "other")), id: 1)
            let r = try await raw.nextReply()
            #expect(errorCode(r.reply) == .unsupportedVersion)
            if case .error(let e) = r.reply { #expect(e.message.contains("this node speaks 2...\(batonProtocolVersion)")) }
            #expect(try await raw.next() == nil)
            try await assertHealthy(node)
        }
    }

    /// A batch whose count promises more jobs (or completions) than its frame holds, or more than the
    /// most allowed, or nothing to do, is refused whole; the connection and every other client go on (issue 38).
    @Test func aBadBatchIsRefusedWholeAndHarmsNothing() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 4)
            var body = ByteBuffer()
            Request.command(SequenceNumber(1), .addJobs([JobSpec(type: "a"), JobSpec(type: "a"), JobSpec(type: "a")])).encodeBody(into: &body)
            body.setInteger(UInt16(4), at: body.readerIndex + 8)  // the count says four; three follow
            var frame = ByteBuffer()
            frame.writeFrame(opcode: .jobAddBatch, requestID: RequestID(2)) { $0.writeImmutableBuffer(body) }
            try await raw.send(frame)
            #expect(errorCode(try await raw.nextReply().reply) == .malformedFrame)
            try await raw.send(.command(SequenceNumber(2), .addJobs([])), id: 3)
            #expect(errorCode(try await raw.nextReply().reply) == .invalidArgument)
            try await raw.send(.command(SequenceNumber(3), .addJobs(Array(repeating: JobSpec(type: "a"), count: 1001))), id: 4)
            #expect(errorCode(try await raw.nextReply().reply) == .invalidArgument)
            try await raw.send(.command(SequenceNumber(4), .claimJobs(types: ["a"], worker: "w", max: 0)), id: 5)
            #expect(errorCode(try await raw.nextReply().reply) == .invalidArgument)
            // JOB_COMPLETE_BATCH: a count past the frame's end, nothing to do, a claim over the most.
            body.clear()
            let completions = [JobCompletion(id: JobID(1), token: FencingToken(1)), JobCompletion(id: JobID(2), token: FencingToken(2))]
            Request.command(SequenceNumber(6), .completeJobs(completions, claimMax: 0, types: [], worker: "w")).encodeBody(into: &body)
            body.setInteger(UInt16(3), at: body.readerIndex + 8 + 3 + 2 + 2)  // the count says three; two follow
            frame.clear()
            frame.writeFrame(opcode: .jobCompleteBatch, requestID: RequestID(7)) { $0.writeImmutableBuffer(body) }
            try await raw.send(frame)
            #expect(errorCode(try await raw.nextReply().reply) == .malformedFrame)
            try await raw.send(.command(SequenceNumber(7), .completeJobs([], claimMax: 0, types: [], worker: "w")), id: 8)
            #expect(errorCode(try await raw.nextReply().reply) == .invalidArgument)
            try await raw.send(.command(SequenceNumber(8), .completeJobs([], claimMax: 1001, types: ["a"], worker: "w")), id: 9)
            #expect(errorCode(try await raw.nextReply().reply) == .invalidArgument)
            // The same connection goes on, and nothing of the refused batches exists.
            try await raw.send(.command(SequenceNumber(5), .addJobs([JobSpec(type: "a")])), id: 6)
            guard case .jobsAdded(let added) = try await raw.nextReply().reply else {
                Issue.record("a good batch after bad ones was not added")
                return
            }
            #expect(added.map(\.id) == [JobID(1)], "a job of a refused batch took an id")
            await raw.close()
            try await assertHealthy(node)
        }
    }

    /// PROTOCOL.md §4: HELLO names the newest version the client speaks, and the answer the version
    /// both use: a client of version 2 keeps version 2, of 3 keeps 3, one of a later version gets 5.
    @Test func helloAgreesOnAVersion() async throws {
        try await withNode { node in
            for (asked, agreed) in [(UInt16(2), UInt16(2)), (3, 3), (4, 4), (5, 5), (9, 5)] {
                let raw = try await RawConnection(port: node.port)
                try await raw.send(.hello(Hello(version: asked, clientID: ClientID(1), clientName: "v\(asked)")), id: 1)
                guard case .hello(let h) = try await raw.nextReply().reply else {
                    Issue.record("HELLO of version \(asked) was not answered with HELLO")
                    return
                }
                #expect(h.version == agreed, "asked \(asked)")
                await raw.close()
            }
        }
    }

    @Test func unknownOpcodeKeepsTheConnection() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var b = ByteBuffer()
            b.writeFrame(opcode: Opcode(rawValue: 0x6A), requestID: RequestID(3)) { _ in }
            try await raw.send(b)
            let r = try await raw.nextReply()
            #expect(r.id == 3 && errorCode(r.reply) == .unknownOpcode)
            try await raw.send(.ping, id: 4)
            #expect(try await raw.nextReply().id == 4)
            await raw.close()
        }
    }

    @Test func fieldPastTheEndOfTheFrame() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var b = ByteBuffer()
            b.writeFrame(opcode: .lockGet, requestID: RequestID(3)) { $0.writeBytes([0, 200, 0x61]) }
            try await raw.send(b)
            let r = try await raw.nextReply()
            #expect(r.id == 3 && errorCode(r.reply) == .malformedFrame)
            try await raw.send(.ping, id: 4)
            #expect(try await raw.nextReply().id == 4)
            await raw.close()
            try await assertHealthy(node)
        }
    }

    @Test func oversizedFrameGetsAnErrorThenTheConnectionCloses() async throws {
        try await withNode({ $0.maxFrameSize = 4096 }) { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var b = ByteBuffer()
            b.writeFrame(opcode: .jobAdd, requestID: RequestID(2)) { $0.writeBytes([UInt8](repeating: 0, count: 5000)) }
            try await raw.send(b)
            let r = try await raw.nextReply()
            #expect(errorCode(r.reply) == .frameTooLarge)
            #expect(try await raw.next() == nil)
            try await assertHealthy(node)
        }
    }

    /// The node cuts frames out of the byte stream itself: a frame split over many reads, several
    /// frames in one read, and a large frame arriving in pieces all decode as sent.
    @Test func framesSplitAndJoinedAnyhow() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var three = ByteBuffer()
            three.writeRequest(.ping, requestID: RequestID(10))
            three.writeRequest(
                .command(SequenceNumber(1), .acquireLock(key: "split", owner: "o", ttl: 5000, wait: 0)), requestID: RequestID(11))
            three.writeRequest(.ping, requestID: RequestID(12))
            // One byte per write: every frame boundary and every header byte falls between reads.
            while let byte = three.readSlice(length: 1) {
                try await raw.send(byte)
                try await Task.sleep(for: .milliseconds(1))
            }
            let first = try await raw.nextReplies(3)
            #expect(Set(first.keys) == [10, 11, 12])
            guard case .lockAcquired(.granted)? = first[11] else {
                Issue.record("split acquire answered with \(String(describing: first[11]))")
                return
            }

            // A 300 KB job in 1,000-byte pieces, the last piece carrying the start of a ping.
            let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            var big = ByteBuffer()
            big.writeRequest(.command(SequenceNumber(2), .addJob(JobSpec(type: "big", payload: payload))), requestID: RequestID(20))
            big.writeRequest(.ping, requestID: RequestID(21))
            while big.readableBytes > 0 {
                try await raw.send(big.readSlice(length: min(1000, big.readableBytes))!)
            }
            let second = try await raw.nextReplies(2)
            #expect(Set(second.keys) == [20, 21])
            guard case .jobAdded(let id, created: true)? = second[20] else {
                Issue.record("big add answered with \(String(describing: second[20]))")
                return
            }
            try await raw.send(.command(SequenceNumber(3), .claimJobByID(id, worker: "w")), id: 22)
            guard case .jobClaimedByID(let claimed) = try await raw.nextReply().reply else {
                Issue.record("claim of the big job failed")
                return
            }
            #expect(claimed.payload == payload)
            await raw.close()
            try await assertHealthy(node)
        }
    }

    @Test func truncatedFrameThenDisconnect() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var b = ByteBuffer()
            b.writeRequest(.command(SequenceNumber(1), .acquireLock(key: "t", owner: "o", ttl: 1000, wait: 0)), requestID: RequestID(2))
            try await raw.send(b.getSlice(at: 0, length: b.readableBytes - 5)!)
            await raw.close()
            try await assertHealthy(node)
            // The half-sent acquire was never applied.
            let client = node.client()
            #expect(try await client.getLock("t") == nil)
            await client.shutdown()
        }
    }

    @Test func invalidUTF8Key() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            var b = ByteBuffer()
            b.writeFrame(opcode: .lockAcquire, requestID: RequestID(2)) {
                $0.writeU64(1)
                $0.writeBytes([0, 2, 0xFF, 0xFE])
                $0.writeStr("o")
                $0.writeU32(1000)
                $0.writeU32(0)
            }
            try await raw.send(b)
            let r = try await raw.nextReply()
            #expect(errorCode(r.reply) == .invalidArgument)
            guard case .error(let e) = r.reply else { Issue.record("expected an error answer"); return }
            #expect(e.message.contains("UTF-8"))
            await raw.close()
        }
    }

    @Test(arguments: [
        ("", 1000), (String(repeating: "k", count: 257), 1000), ("k", 0), ("k", 50), ("k", 4_000_000_000),
    ] as [(String, UInt32)])
    func invalidKeysAndTTLs(key: String, ttl: UInt32) async throws {
        try await withNode { node in
            let client = node.client()
            await #expect(throws: BatonClientError.self) {
                _ = try await client.acquireLock(key, ttl: .milliseconds(Int64(ttl)))
            }
            do {
                _ = try await client.acquireLock(key, ttl: .milliseconds(Int64(ttl)))
            } catch let e as BatonClientError {
                #expect(e.serverCode == .invalidArgument)
            }
            await client.shutdown()
        }
    }

    @Test func unknownJobAndWrongTokens() async throws {
        try await withNode { node in
            let client = node.client()
            await expectServerError(.jobNotFound) { try await client.completeJob(JobID(77), token: FencingToken(1)) }
            await expectServerError(.jobNotFound) { _ = try await client.getJob(JobID(77)) }
            let (id, _) = try await client.addJob(JobSpec(type: "t"))
            let job = try #require(try await client.claimJob(types: ["t"]))
            await expectServerError(.claimLost) {
                try await client.completeJob(id, token: FencingToken(job.token.rawValue + 1))
            }
            await expectServerError(.invalidState) { try await client.requeueJob(id) }
            guard case .granted(let token, _, _) = try await client.acquireLock("k", ttl: .seconds(5)) else { Issue.record("the premise failed: the lock was not granted"); return }
            await expectServerError(.staleToken) { try await client.releaseLock("k", token: FencingToken(token.rawValue + 100)) }
            await expectServerError(.staleToken) { try await client.renewLock("k", token: FencingToken(1), ttl: .seconds(1)) }
            await client.shutdown()
        }
    }

    // The idle timeouts here leave a loaded machine (tests run two to a core) seconds between the
    // connect and the HELLO: a shorter one closed the connection before the test spoke.
    @Test func idleConnectionTimesOut() async throws {
        try await withNode({ $0.idleTimeoutMilliseconds = 3000 }) { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            let r = try await raw.nextReply()
            #expect(r.id == 0 && errorCode(r.reply) == .idleTimeout)
            #expect(try await raw.next() == nil)
        }
    }

    @Test func waitingConnectionIsNotIdle() async throws {
        try await withNode({ $0.idleTimeoutMilliseconds = 3000 }) { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello()
            try await raw.send(.command(SequenceNumber(1), .claimJob(types: ["t"], worker: "w", wait: 7000)), id: 2)
            let r = try await raw.nextReply()
            #expect(r.id == 2 && r.reply == .jobClaimed(nil))
            await raw.close()
        }
    }

    @Test func shutdownTellsConnectedClients() async throws {
        let node = try await TestNode.start()
        let raw = try await RawConnection(port: node.port)
        try await raw.hello()
        try await node.stop()
        let r = try await raw.nextReply()
        #expect(r.id == 0 && errorCode(r.reply) == .shuttingDown)
        #expect(try await raw.next() == nil)
    }

    /// §1: every request gets exactly one answer. At shutdown a waiting acquire got only the
    /// connection's goodbye, with request id 0 (issue 19, item 3). Now it gets SHUTTING_DOWN with its
    /// own id first, then the goodbye.
    @Test func shutdownAnswersEveryOpenRequestByItsOwnID() async throws {
        let node = try await TestNode.start()
        let holder = try await RawConnection(port: node.port)
        try await holder.hello(client: 701)
        let acquire = Command.acquireLock(key: "s", owner: "raw", ttl: Milliseconds(60_000), wait: Milliseconds(30_000))
        try await holder.send(.command(SequenceNumber(1), acquire), id: 1)
        guard case .lockAcquired(.granted) = try await holder.nextReply().reply else {
            Issue.record("the premise failed: the holder was not granted the lock")
            try await node.stop()
            return
        }
        let raw = try await RawConnection(port: node.port)
        try await raw.hello(client: 702)
        try await raw.send(.command(SequenceNumber(1), acquire), id: 5)
        try await raw.send(.ping, id: 6)
        #expect(try await raw.nextReply().id == 6)
        try await node.stop()
        let answer = try await raw.nextReply()
        #expect(answer.id == 5 && errorCode(answer.reply) == .shuttingDown, "\(answer)")
        let goodbye = try await raw.nextReply()
        #expect(goodbye.id == 0 && errorCode(goodbye.reply) == .shuttingDown, "\(goodbye)")
        #expect(try await raw.next() == nil)
        await holder.close()
    }
}

func expectServerError(_ code: ErrorCode, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), got success")
    } catch let e as BatonClientError {
        #expect(e.serverCode == code, "expected \(code), got \(e)")
    } catch {
        Issue.record("expected \(code), got \(error)")
    }
}
