import BatonProtocol
import BatonRaft
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import BatonServer

@Suite struct PeerCodecTests {
    static let samples: [RaftMessage] = [
        .preVote(lastIndex: LogIndex(7), lastTerm: Term(3)),
        .preVoteReply(granted: true),
        .vote(lastIndex: LogIndex(.max), lastTerm: Term(.max)),
        .voteReply(granted: false),
        .append(prevIndex: LogIndex(10), prevTerm: Term(2), entries: [], commit: LogIndex(9)),
        .append(
            prevIndex: LogIndex(10), prevTerm: Term(2),
            entries: [LogEntry(term: Term(2), index: LogIndex(11), data: [1, 2, 3]), LogEntry(term: Term(3), index: LogIndex(12), data: [])],
            commit: LogIndex(11)),
        .appendReply(success: false, index: LogIndex(10), hint: LogIndex(4)),
        .heartbeat(commit: LogIndex(5), round: 99, context: 1_764_633_600_000),
        .heartbeatReply(round: 99, syncing: true),
        .heartbeatReply(round: 100, syncing: false),
        .installSnapshot(Snapshot(index: LogIndex(100), term: Term(4), data: Array(repeating: 0xAB, count: 1000))),
    ]

    /// Every message survives encode and decode unchanged, several frames in one buffer included.
    @Test func everyMessageRoundTrips() throws {
        var buffer = ByteBuffer()
        let envelopes = Self.samples.enumerated().map {
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(UInt64(2 + $0.offset % 2)), term: Term(UInt64($0.offset)), message: $0.element)
        }
        for e in envelopes { e.encode(into: &buffer) }
        for expected in envelopes {
            guard let length = buffer.readInteger(as: UInt32.self), var body = buffer.readSlice(length: Int(length)) else {
                Issue.record("frame missing for \(expected.message)")
                return
            }
            #expect(try RaftEnvelope.decode(&body) == expected)
        }
        #expect(buffer.readableBytes == 0)
    }

    /// Truncated, padded, unknown and lying frames are refused with an error, never a crash.
    @Test func badFramesAreRefused() throws {
        for message in Self.samples {
            var full = ByteBuffer()
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(2), term: Term(1), message: message).encode(into: &full)
            full.moveReaderIndex(forwardBy: 4)
            let body = Array(full.readableBytesView)
            for cut in 0..<body.count {
                var short = ByteBuffer(bytes: body[..<cut])
                #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&short) }
            }
            var padded = ByteBuffer(bytes: body + [0])
            #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&padded) }
        }
        var unknown = ByteBuffer(bytes: [42] + Array(repeating: 0, count: 24))
        #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&unknown) }
        // An append claiming four billion entries in a few bytes is refused before allocating for them.
        var lying = ByteBuffer(bytes: [5] + Array(repeating: 0, count: 48) + [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ProtocolError.self) { try RaftEnvelope.decode(&lying) }
    }

    /// The preamble: the right one passes; another program's bytes, or another peer protocol version,
    /// are refused with an error that says which.
    @Test func preambleIsChecked() throws {
        var good = ByteBuffer()
        PeerPreamble.write(into: &good)
        #expect(good.readableBytes == PeerPreamble.size)
        try PeerPreamble.check(&good)
        #expect(good.readableBytes == 0)

        var other = ByteBuffer(bytes: Array("GET /".utf8) + [0])
        #expect(throws: ProtocolError.self) { try PeerPreamble.check(&other) }
        var newer = ByteBuffer(bytes: PeerPreamble.magic)
        newer.writeInteger(PeerPreamble.version + 1)
        do {
            try PeerPreamble.check(&newer)
            Issue.record("a newer version passed")
        } catch let error as ProtocolError {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message.contains("version \(PeerPreamble.version + 1)") && error.message.contains("speaks \(PeerPreamble.version)"))
        }
    }

    /// Over loopback: a connection that opens with the preamble has its messages delivered; one that
    /// starts with a frame (a member built before peer protocol versions) is closed by the listener.
    @Test func listenerDeliversOnlyAfterAPreamble() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let received = loop.makePromise(of: RaftEnvelope.self)
        let transport = try await loop.submit {
            PeerTransport(eventLoop: loop, peers: [:], maxFrameSize: 1 << 20, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }.get()
        try await loop.submit { transport.receive = { received.succeed($0) } }.get()
        let listener = try await loop.flatSubmit { transport.listen(host: "127.0.0.1", port: 0) }.get()
        let port = try #require(listener.localAddress?.port)
        let envelope = RaftEnvelope(from: NodeIndex(2), to: NodeIndex(1), term: Term(3), message: .heartbeat(commit: LogIndex(4), round: 5, context: 6))

        func connect() async throws -> any Channel {
            try await ClientBootstrap(group: loop).connect(host: "127.0.0.1", port: port).get()
        }
        let old = try await connect()
        var frame = ByteBuffer()
        envelope.encode(into: &frame)
        try await old.writeAndFlush(frame).get()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await old.closeFuture.get() }  // closed by the listener
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                throw ProtocolError(.malformedFrame, "a connection without a preamble stayed open")
            }
            try await group.next()
            group.cancelAll()
        }

        let current = try await connect()
        var bytes = ByteBuffer()
        PeerPreamble.write(into: &bytes)
        envelope.encode(into: &bytes)
        try await current.writeAndFlush(bytes).get()
        #expect(try await received.futureResult.get() == envelope)

        // A snapshot five times the transport's 1 MiB frame limit arrives whole, in chunks.
        let big = RaftEnvelope(
            from: NodeIndex(2), to: NodeIndex(1), term: Term(3),
            message: .installSnapshot(Snapshot(index: LogIndex(9), term: Term(3), data: (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })))
        let snapshotReceived = loop.makePromise(of: RaftEnvelope.self)
        try await loop.submit { transport.receive = { snapshotReceived.succeed($0) } }.get()
        var chunks = ByteBuffer()
        big.encode(into: &chunks, snapshotChunkSize: 512 << 10)
        try await current.writeAndFlush(chunks).get()
        #expect(try await snapshotReceived.futureResult.get() == big)
        try await current.close()
        try await loop.submit { transport.close() }.get()
    }

    /// A snapshot larger than a chunk goes as several frames, none larger than a chunk and its
    /// header, and only the last completes it.
    @Test func aLargeSnapshotTravelsInChunks() throws {
        let snapshot = Snapshot(index: LogIndex(50), term: Term(2), data: (0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        let envelope = RaftEnvelope(from: NodeIndex(1), to: NodeIndex(3), term: Term(4), message: .installSnapshot(snapshot))
        var buffer = ByteBuffer()
        envelope.encode(into: &buffer, snapshotChunkSize: 4096)
        var assembler = SnapshotAssembler()
        var frames = 0
        var completed: [RaftEnvelope] = []
        while let length = buffer.readInteger(as: UInt32.self), var body = buffer.readSlice(length: Int(length)) {
            frames += 1
            #expect(Int(length) <= 4096 + 64)
            if let e = try assembler.add(try PeerFrame.decode(&body)) { completed.append(e) }
        }
        #expect(frames == 3)
        #expect(completed == [envelope])
    }

    /// A chunk that does not continue the snapshot being assembled (a gap, another snapshot, one
    /// arriving first) is refused; a chunk at offset 0 starts over.
    @Test func aChunkThatDoesNotContinueIsRefused() throws {
        func chunks(index: UInt64) throws -> [PeerFrame] {
            let envelope = RaftEnvelope(
                from: NodeIndex(1), to: NodeIndex(2), term: Term(1),
                message: .installSnapshot(Snapshot(index: LogIndex(index), term: Term(1), data: Array(repeating: 7, count: 300))))
            var buffer = ByteBuffer()
            envelope.encode(into: &buffer, snapshotChunkSize: 100)
            var frames: [PeerFrame] = []
            while let length = buffer.readInteger(as: UInt32.self), var body = buffer.readSlice(length: Int(length)) {
                frames.append(try PeerFrame.decode(&body))
            }
            return frames
        }
        let a = try chunks(index: 5), b = try chunks(index: 6)
        #expect(a.count == 3)
        var first = SnapshotAssembler()
        #expect(throws: ProtocolError.self) { try first.add(a[1]) }  // no start
        var gap = SnapshotAssembler()
        #expect(try gap.add(a[0]) == nil)
        #expect(throws: ProtocolError.self) { try gap.add(a[2]) }
        var mixed = SnapshotAssembler()
        #expect(try mixed.add(a[0]) == nil)
        #expect(throws: ProtocolError.self) { try mixed.add(b[1]) }
        var restart = SnapshotAssembler()
        #expect(try restart.add(a[0]) == nil)
        #expect(try restart.add(a[1]) == nil)
        #expect(try restart.add(b[0]) == nil)  // the sender began another snapshot
        #expect(try restart.add(b[1]) == nil)
        guard case .installSnapshot(let s)? = try restart.add(b[2])?.message else {
            Issue.record("the restarted snapshot did not complete")
            return
        }
        #expect(s.index == LogIndex(6) && s.data.count == 300)
    }
}
