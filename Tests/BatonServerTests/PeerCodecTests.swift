import BatonCore
import BatonProtocol
import BatonRaft
import BatonTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import BatonServer

@Suite(.heavy) struct PeerCodecTests {
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
                #expect(throws: ErrorReply.self) { try RaftEnvelope.decode(&short) }
            }
            var padded = ByteBuffer(bytes: body + [0])
            #expect(throws: ErrorReply.self) { try RaftEnvelope.decode(&padded) }
        }
        var unknown = ByteBuffer(bytes: [42] + Array(repeating: 0, count: 24))
        #expect(throws: ErrorReply.self) { try RaftEnvelope.decode(&unknown) }
        // An append claiming four billion entries in a few bytes is refused before allocating for them.
        var lying = ByteBuffer(bytes: [5] + Array(repeating: 0, count: 48) + [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ErrorReply.self) { try RaftEnvelope.decode(&lying) }
    }

    /// The preamble exchange: the listener answers the lower of the two highest versions, if this
    /// member speaks it; the opener accepts only an answer it speaks; another program's bytes are
    /// refused. Each refusal says which versions, and what to upgrade.
    @Test func preambleAgreesOnAVersion() throws {
        var good = ByteBuffer()
        PeerPreamble.write(into: &good)
        #expect(good.readableBytes == PeerPreamble.size)
        #expect(try PeerPreamble.read(&good) == PeerPreamble.highest)
        #expect(good.readableBytes == 0)
        var other = ByteBuffer(bytes: Array("GET /".utf8) + [0])
        #expect(throws: ErrorReply.self) { _ = try PeerPreamble.read(&other) }

        #expect(try PeerPreamble.agree(theirs: PeerPreamble.highest) == PeerPreamble.highest)
        #expect(try PeerPreamble.agree(theirs: PeerPreamble.highest + 7) == PeerPreamble.highest)  // a newer build speaks ours
        #expect(try PeerPreamble.accept(answer: PeerPreamble.highest) == PeerPreamble.highest)
        for refusal in [
            { try PeerPreamble.agree(theirs: PeerPreamble.lowest - 1) },  // an older build: it must be upgraded first
            { try PeerPreamble.accept(answer: PeerPreamble.lowest - 1) },
            { try PeerPreamble.accept(answer: PeerPreamble.highest + 1) },  // more than was offered
        ] as [() throws -> UInt16] {
            do {
                _ = try refusal()
                Issue.record("a version this member does not speak was agreed")
            } catch let error as ErrorReply {
                #expect(error.code == .unsupportedVersion)
                #expect(error.message.contains("\(PeerPreamble.lowest)...\(PeerPreamble.highest)") && error.message.contains("upgrade"))
            }
        }
    }

    /// Over loopback: the listener answers a preamble (a newer build's too) with the version both
    /// speak and then delivers messages; a connection that starts with a frame (a member built before
    /// peer protocol versions), or whose version is too old, is closed.
    @Test func listenerAnswersThePreambleThenDelivers() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let received = loop.makePromise(of: RaftEnvelope.self)
        let transport = try await loop.submit {
            NIOLoopBound(
                PeerTransport(eventLoop: loop, peers: [:], maxFrameSize: 1 << 20, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })),
                eventLoop: loop)
        }.get()
        try await loop.submit { transport.value.receive = { received.succeed($0) } }.get()
        let listener = try await loop.flatSubmit { transport.value.listen(host: "127.0.0.1", port: 0) }.get()
        let port = try #require(listener.localAddress?.port)
        let envelope = RaftEnvelope(from: NodeIndex(2), to: NodeIndex(1), term: Term(3), message: .heartbeat(commit: LogIndex(4), round: 5, context: 6))

        var frame = ByteBuffer()
        envelope.encode(into: &frame)
        var tooOld = ByteBuffer()
        PeerPreamble.write(version: PeerPreamble.lowest - 1, into: &tooOld)
        for refused in [frame, tooOld] {
            let peer = try await RawPeer.connect(port: port, on: loop)
            try await peer.channel.writeAndFlush(refused).get()
            try await peer.expectClosed()
        }

        let current = try await RawPeer.connect(port: port, on: loop)
        var bytes = ByteBuffer()
        PeerPreamble.write(version: PeerPreamble.highest + 1, into: &bytes)
        envelope.encode(into: &bytes)
        try await current.channel.writeAndFlush(bytes).get()
        var answer = ByteBuffer()
        PeerPreamble.write(into: &answer)
        #expect(try await current.firstBytes.futureResult.get() == Array(answer.readableBytesView))
        #expect(try await received.futureResult.get() == envelope)

        // A snapshot five times the transport's 1 MiB frame limit arrives whole, in chunks.
        let big = RaftEnvelope(
            from: NodeIndex(2), to: NodeIndex(1), term: Term(3),
            message: .installSnapshot(Snapshot(index: LogIndex(9), term: Term(3), data: (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })))
        let snapshotReceived = loop.makePromise(of: RaftEnvelope.self)
        try await loop.submit { transport.value.receive = { snapshotReceived.succeed($0) } }.get()
        var chunks = ByteBuffer()
        big.encode(into: &chunks, snapshotChunkSize: 512 << 10)
        try await current.channel.writeAndFlush(chunks).get()
        #expect(try await snapshotReceived.futureResult.get() == big)
        try await current.channel.close()
        try await loop.submit { transport.value.close() }.get()
    }

    /// A transport of member 1 whose peer, member 2, listens on `port`.
    func transportToPeer2(at port: Int, on loop: any EventLoop) async throws -> NIOLoopBound<PeerTransport> {
        try await loop.submit {
            NIOLoopBound(
                PeerTransport(
                    eventLoop: loop, peers: [NodeIndex(2): ("127.0.0.1", port)], maxFrameSize: 1 << 20,
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })),
                eventLoop: loop)
        }.get()
    }

    /// The opener sends nothing before the listener's answer, and messages after an answer it speaks;
    /// a listener that answers a version it does not speak, or does not answer, is hung up on, and the
    /// transport connects again.
    @Test func openerSendsOnlyAfterAnAnswerItSpeaks() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let envelope = RaftEnvelope(from: NodeIndex(1), to: NodeIndex(2), term: Term(3), message: .heartbeat(commit: LogIndex(4), round: 5, context: 6))
        var frame = ByteBuffer()
        envelope.encode(into: &frame)
        for answer in [PeerPreamble.highest, PeerPreamble.highest + 1, nil] as [UInt16?] {
            let fake = try await FakeListener.start(on: loop, answer: answer)
            let port = fake.port
            let transport = try await transportToPeer2(at: port, on: loop)
            // Sends every 20 ms, as Raft would (the first ones open the connection), until the
            // listener that speaks the answer has 10 messages, or one that does not was connected
            // to twice (hung up on, then tried again).
            let seen = try await eventually("the transport's outcome with answer \(String(describing: answer))", every: .milliseconds(20)) {
                try await loop.submit {
                    transport.value.send(envelope)
                    transport.value.flush()
                }.get()
                let seen = fake.state.withLockedValue { ($0.received, $0.connections) }
                let messages = seen.0.count - min(seen.0.count, PeerPreamble.size)
                return (answer == PeerPreamble.highest ? messages >= frame.readableBytes * 10 : seen.1 >= 2) ? seen : nil
            }
            var preamble = ByteBuffer()
            PeerPreamble.write(into: &preamble)
            #expect(seen.0.starts(with: Array(preamble.readableBytesView)), "\(String(describing: answer))")
            let messages = Array(seen.0.dropFirst(PeerPreamble.size))
            if answer == PeerPreamble.highest {
                #expect(seen.1 == 1)
                #expect(messages.count >= frame.readableBytes * 10 && messages.starts(with: Array(frame.readableBytesView)))
            } else {
                #expect(messages.isEmpty, "messages went to a listener that answered \(String(describing: answer))")
                #expect(seen.1 >= 2, "no new connection after hanging up on \(String(describing: answer))")  // hung up, then tried again
            }
            try await loop.submit { transport.value.close() }.get()
            try await fake.channel.close()
        }
    }
    /// During a rolling upgrade, a member that agreed peer protocol 2 (an older build) is sent its
    /// snapshots in format 1, which it reads; a member of this build gets them as they are (format 2).
    @Test func anOlderMemberGetsASnapshotItReads() async throws {
        var machine = StateMachine()
        _ = machine.apply(.command(ClientID(1), SequenceNumber(1), .addJob(JobSpec(type: "t"))), at: Timestamp(milliseconds: 5))
        let current = Array(machine.snapshot().readableBytesView)
        let formatOne = Array(machine.snapshot(version: 1).readableBytesView)
        #expect(current != formatOne)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let envelope = RaftEnvelope(
            from: NodeIndex(1), to: NodeIndex(2), term: Term(3),
            message: .installSnapshot(Snapshot(index: LogIndex(9), term: Term(3), data: current)))
        for (answer, expected) in [(UInt16(2), formatOne), (PeerPreamble.highest, current)] {
            let fake = try await FakeListener.start(on: loop, answer: answer)
            let port = fake.port
            let transport = try await transportToPeer2(at: port, on: loop)
            // The first sends open the connection; they are dropped until the listener answers.
            let received = try await eventually("the listener receives the snapshot", every: .milliseconds(20)) { () throws -> [RaftEnvelope]? in
                try await loop.submit {
                    transport.value.send(envelope)
                    transport.value.flush()
                }.get()
                var received: [RaftEnvelope] = []
                var bytes = ByteBuffer(bytes: fake.state.withLockedValue { $0.received }.dropFirst(PeerPreamble.size))
                var assembler = SnapshotAssembler()
                while let length = bytes.readInteger(as: UInt32.self), var body = bytes.readSlice(length: Int(length)) {
                    if let e = try assembler.add(try PeerFrame.decode(&body)) { received.append(e) }
                }
                return received.isEmpty ? nil : received
            }
            guard case .installSnapshot(let sent) = received[0].message else {
                Issue.record("not a snapshot: \(received[0])")
                return
            }
            #expect(sent.data == expected, "peer protocol \(answer)")
            #expect(sent.index == LogIndex(9))
            try await loop.submit { transport.value.close() }.get()
            try await fake.channel.close()
        }
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
        #expect(throws: ErrorReply.self) { try first.add(a[1]) }  // no start
        var gap = SnapshotAssembler()
        #expect(try gap.add(a[0]) == nil)
        #expect(throws: ErrorReply.self) { try gap.add(a[2]) }
        var mixed = SnapshotAssembler()
        #expect(try mixed.add(a[0]) == nil)
        #expect(throws: ErrorReply.self) { try mixed.add(b[1]) }
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

/// A raw peer connection for tests: what arrives on it, and whether it was closed.
final class RawPeer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let firstBytes: EventLoopPromise<[UInt8]>
    let channel: any Channel

    private init(loop: any EventLoop, channel: any Channel) {
        firstBytes = loop.makePromise()
        self.channel = channel
    }

    static func connect(port: Int, on loop: any EventLoop) async throws -> RawPeer {
        let bootstrap = ClientBootstrap(group: loop)
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        let peer = RawPeer(loop: loop, channel: channel)
        try await channel.pipeline.addHandler(peer).get()
        return peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        firstBytes.succeed(Array(unwrapInboundIn(data).readableBytesView))
    }

    func channelInactive(context: ChannelHandlerContext) {
        firstBytes.fail(ChannelError.eof)
    }

    /// Waits for the other end to close the connection.
    func expectClosed(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually("the refused connection is closed", every: .milliseconds(10), sourceLocation: sourceLocation) { !self.channel.isActive }
    }
}

/// A listener that answers every preamble with `answer` (nil: never answers), and keeps every byte
/// it is sent on its first connection.
final class FakeListener: Sendable {
    let state: NIOLockedValueBox<(received: [UInt8], connections: Int)>
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(state: NIOLockedValueBox<(received: [UInt8], connections: Int)>, channel: any Channel) {
        self.state = state
        self.channel = channel
    }

    static func start(on loop: any EventLoop, answer: UInt16?) async throws -> FakeListener {
        let state = NIOLockedValueBox((received: [UInt8](), connections: 0))
        let channel = try await ServerBootstrap(group: loop)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let first = state.withLockedValue { s in
                        s.connections += 1
                        return s.connections == 1
                    }
                    try child.pipeline.syncOperations.addHandler(Collector(state: state, first: first, answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeListener(state: state, channel: channel)
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<(received: [UInt8], connections: Int)>
        let first: Bool
        let answer: UInt16?
        var answered = false

        init(state: NIOLockedValueBox<(received: [UInt8], connections: Int)>, first: Bool, answer: UInt16?) {
            self.state = state
            self.first = first
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            if first { state.withLockedValue { $0.received += bytes } }
            if let answer, !answered {
                answered = true
                var reply = context.channel.allocator.buffer(capacity: PeerPreamble.size)
                PeerPreamble.write(version: answer, into: &reply)
                context.writeAndFlush(NIOAny(reply), promise: nil)
            }
        }
    }
}
