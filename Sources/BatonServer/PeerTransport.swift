import BatonCore
import BatonProtocol
import BatonRaft
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Raft messages between cluster members over TCP, framed as in `RaftEnvelope+Codec.swift`, after
/// the `PeerPreamble` exchange that agrees on the peer protocol version.
///
/// One outgoing connection per peer, opened on demand and reopened (at most every 100 ms) after it
/// drops; it carries messages once the listener has answered its preamble (within
/// `agreementTimeout`, or it is closed). Messages for a peer that is not connected are dropped, which
/// Raft tolerates (it resends).
/// Incoming connections are accepted on the member's `raftPort`. Everything runs on the node's event
/// loop: sends, receives and the Raft core never cross threads.
final class PeerTransport {
    private let eventLoop: any EventLoop
    private let peers: [NodeIndex: (host: String, port: Int)]
    private let logger: Logger
    private let maxFrameSize: Int
    private var channels: [NodeIndex: any Channel] = [:]
    /// The peer protocol version agreed on each peer's connection.
    private var versions: [NodeIndex: UInt16] = [:]
    private var connecting: Set<NodeIndex> = []
    private var lastAttempt: [NodeIndex: NIODeadline] = [:]
    private var dirty: Set<NodeIndex> = []
    private var listener: (any Channel)?
    /// How long an opened connection may wait for the listener's answer to its preamble.
    static let agreementTimeout: TimeAmount = .seconds(1)
    /// Called on the event loop for every message that arrives.
    var receive: (RaftEnvelope) -> Void = { _ in }
    /// Called on the event loop when the lowest version agreed with the peers changes (0 while a
    /// peer has not been connected to yet): the node judges schedule slots by it.
    var lowestVersionChanged: (UInt16) -> Void = { _ in }
    private var lowestVersion: UInt16 = 0
    private let tls: TLS?

    /// Mutual TLS between members (`PeerTLS`): the contexts of both ends (read anew on reload), and
    /// each member by the name its certificate carries (its nodeID).
    struct TLS {
        var certificates: CertificateStore
        var members: [String: NodeIndex]
    }

    init(
        eventLoop: any EventLoop, peers: [NodeIndex: (host: String, port: Int)], tls: TLS? = nil, maxFrameSize: Int,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.peers = peers
        self.tls = tls
        self.maxFrameSize = maxFrameSize
        self.logger = logger
    }

    /// Accepts peers' connections on `host:port`.
    func listen(host: String, port: Int) -> EventLoopFuture<any Channel> {
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let maxFrameSize = self.maxFrameSize
        return ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let transport = this.value
                guard let tls = transport.tls, let context = tls.certificates.current.peerListener else {
                    return Self.addPeerHandlers(to: channel, side: .listener, maxFrameSize: maxFrameSize, this)
                }
                let identity = PeerIdentity()
                let logger = transport.logger
                let peer = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
                do {
                    try channel.pipeline.syncOperations.addHandlers([
                        NIOSSLServerHandler(context: context),
                        PeerCertificateCheck(members: tls.members, identity: identity) { why in
                            logger.warning("refused a peer connection", metadata: ["peer": "\(peer)", "reason": "\(why)"])
                        },
                    ])
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return Self.addPeerHandlers(to: channel, side: .listener, maxFrameSize: maxFrameSize, this, identity: identity)
            }
            .bind(host: host, port: port)
            .map { channel in
                this.value.listener = channel
                return channel
            }
    }

    /// Queues `envelope` for its peer; `flush()` sends what was queued.
    func send(_ envelope: RaftEnvelope) {
        guard let channel = channels[envelope.to], channel.isActive else {
            connect(envelope.to)
            return
        }
        var envelope = envelope
        if case .installSnapshot(var snapshot) = envelope.message,
            let version = versions[envelope.to], version < PeerPreamble.highest
        {
            // A member of an older build during a rolling upgrade: a snapshot in the format it reads.
            do {
                snapshot.data = try StateMachine.snapshot(
                    snapshot.data, readableBy: PeerPreamble.snapshotVersion(forPeerProtocol: version))
            } catch {
                logger.error("snapshot not sent", metadata: ["peer": "\(envelope.to)", "error": "\(error)"])
                return
            }
            envelope.message = .installSnapshot(snapshot)
        }
        var buffer = channel.allocator.buffer(capacity: 64)
        envelope.encode(into: &buffer)
        channel.write(buffer, promise: nil)
        dirty.insert(envelope.to)
    }

    func flush() {
        for peer in dirty { channels[peer]?.flush() }
        dirty.removeAll(keepingCapacity: true)
    }

    private func connect(_ peer: NodeIndex) {
        guard let address = peers[peer], !connecting.contains(peer) else { return }
        if let last = lastAttempt[peer], NIODeadline.now() - last < .milliseconds(100) { return }
        connecting.insert(peer)
        lastAttempt[peer] = .now()
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let maxFrameSize = self.maxFrameSize
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(500))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            // Peers answer over their own connections; after the preamble's answer, anything arriving
            // here is read the same way.
            .channelInitializer { channel in
                let transport = this.value
                var identity: PeerIdentity?
                if let tls = transport.tls, let context = tls.certificates.current.peerOpener,
                    let name = tls.members.first(where: { $0.value == peer })?.key
                {
                    // The listener must prove to be the member dialled: its certificate names its nodeID.
                    do {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: name))
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    identity = PeerIdentity(member: peer)
                }
                return Self.addPeerHandlers(to: channel, side: .opener, maxFrameSize: maxFrameSize, this, identity: identity) { version in
                    this.value.agreed(peer, channel, version: version)
                }
            }
            .connect(host: address.host, port: address.port)
            .whenComplete { result in
                let transport = this.value
                switch result {
                case .success(let channel):
                    var preamble = channel.allocator.buffer(capacity: PeerPreamble.size)
                    PeerPreamble.write(into: &preamble)
                    channel.writeAndFlush(preamble, promise: nil)
                    // Still connecting until the answer (`agreed`), the close, or the timeout.
                    let timeout = channel.eventLoop.scheduleTask(in: Self.agreementTimeout) {
                        if this.value.channels[peer] !== channel {
                            this.value.logger.warning("peer did not answer the preamble", metadata: ["peer": "\(peer)"])
                            channel.close(promise: nil)
                        }
                    }
                    channel.closeFuture.whenComplete { _ in
                        timeout.cancel()
                        if this.value.channels[peer] !== channel { this.value.connecting.remove(peer) }
                    }
                case .failure(let error):
                    transport.connecting.remove(peer)
                    transport.logger.debug("peer unreachable", metadata: ["peer": "\(peer)", "error": "\(error)"])
                }
            }
    }

    /// The listener answered the preamble of the connection opened to `peer`: messages go on it now.
    private func agreed(_ peer: NodeIndex, _ channel: any Channel, version: UInt16) {
        connecting.remove(peer)
        guard channel.isActive else { return }
        channels[peer] = channel
        versions[peer] = version
        logger.info("connected to peer", metadata: ["peer": "\(peer)", "peer.protocol": "\(version)"])
        let lowest = peers.keys.map { versions[$0] ?? 0 }.min() ?? PeerPreamble.highest
        if lowest != lowestVersion {
            lowestVersion = lowest
            lowestVersionChanged(lowest)
        }
    }

    /// Frames in, messages handed to `receive`: the same on accepted and on opened connections, after
    /// the preamble exchange (`agreed`: the opener's, once the listener answered).
    private static func addPeerHandlers(
        to channel: any Channel, side: PeerFrameDecoder.Side, maxFrameSize: Int, _ transport: NIOLoopBound<PeerTransport>,
        identity: PeerIdentity? = nil, agreed: @escaping (UInt16) -> Void = { _ in }
    ) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(PeerFrameDecoder(maxFrameSize: maxFrameSize, side: side)),
                PeerInboundHandler(logger: transport.value.logger, identity: identity, agreed: agreed) { transport.value.receive($0) },
            ])
        }
    }

    func close() {
        listener?.close(promise: nil)
        for channel in channels.values { channel.close(promise: nil) }
        channels.removeAll()
    }
}

/// Reads the preamble (the opener's on an accepted connection, which it answers; the listener's
/// answer on an opened one), then splits the byte stream into peer frames: a `u32` length, then that
/// many bytes.
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    /// Which end of the connection this member is.
    enum Side {
        case listener, opener
    }
    let maxFrameSize: Int
    let side: Side
    var expectingPreamble = true

    init(maxFrameSize: Int, side: Side) {
        self.maxFrameSize = maxFrameSize
        self.side = side
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if expectingPreamble {
            guard buffer.readableBytes >= PeerPreamble.size else { return .needMoreData }
            let theirs = try PeerPreamble.read(&buffer)
            let version: UInt16
            switch side {
            case .listener:
                version = try PeerPreamble.agree(theirs: theirs)
                var answer = context.channel.allocator.buffer(capacity: PeerPreamble.size)
                PeerPreamble.write(version: version, into: &answer)
                context.writeAndFlush(NIOAny(answer), promise: nil)
            case .opener:
                version = try PeerPreamble.accept(answer: theirs)
            }
            expectingPreamble = false
            context.fireUserInboundEventTriggered(PeerProtocolAgreed(version: version))
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameSize else {
            throw ErrorReply(.frameTooLarge, "peer frame of \(length) bytes exceeds \(maxFrameSize)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Decodes each frame and hands the message on; a bad preamble or frame is logged and closes the
/// connection (the peer reconnects).
final class PeerInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let logger: Logger
    private let agreed: (UInt16) -> Void
    private let deliver: (RaftEnvelope) -> Void
    private var snapshot = SnapshotAssembler()
    /// With mutual TLS: the member the connection proved to be; its messages must say they are from it.
    private let identity: PeerIdentity?

    init(
        logger: Logger, identity: PeerIdentity? = nil, agreed: @escaping (UInt16) -> Void = { _ in },
        _ deliver: @escaping (RaftEnvelope) -> Void
    ) {
        self.logger = logger
        self.identity = identity
        self.agreed = agreed
        self.deliver = deliver
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? PeerProtocolAgreed {
            agreed(event.version)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var body = unwrapInboundIn(data)
        do {
            guard let envelope = try snapshot.add(try PeerFrame.decode(&body)) else { return }
            if let identity, envelope.from != identity.member {
                throw ErrorReply(
                    .invalidArgument,
                    "a message from member \(envelope.from) on the connection of \(identity.member.map { "member \($0)" } ?? "no member")")
            }
            deliver(envelope)
        } catch {
            refuse(context: context, error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        refuse(context: context, error)
    }

    private func refuse(context: ChannelHandlerContext, _ error: any Error) {
        let peer = "\(context.remoteAddress.map { "\($0)" } ?? "?")"
        if let error = error as? ErrorReply {
            logger.warning("closed a peer connection", metadata: ["peer": "\(peer)", "error": "\(error.message)"])
        } else if error is NIOSSLError || error is BoringSSLError {
            // A certificate from another CA, for another member, expired: told once per attempt.
            logger.warning("peer TLS failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
        context.close(promise: nil)
    }
}
