import BatonProtocol
import BatonRaft
import Logging
import NIOCore
import NIOPosix

/// Raft messages between cluster members over TCP, framed as in `RaftEnvelope+Codec.swift`, after
/// a `PeerPreamble` from the member that opened the connection.
///
/// One outgoing connection per peer, opened on demand and reopened (at most every 100 ms) after it
/// drops; messages for a peer that is not connected are dropped, which Raft tolerates (it resends).
/// Incoming connections are accepted on the member's `raftPort`. Everything runs on the node's event
/// loop: sends, receives and the Raft core never cross threads.
final class PeerTransport {
    private let eventLoop: any EventLoop
    private let peers: [NodeIndex: (host: String, port: Int)]
    private let logger: Logger
    private let maxFrameSize: Int
    private var channels: [NodeIndex: any Channel] = [:]
    private var connecting: Set<NodeIndex> = []
    private var lastAttempt: [NodeIndex: NIODeadline] = [:]
    private var dirty: Set<NodeIndex> = []
    private var listener: (any Channel)?
    /// Called on the event loop for every message that arrives.
    var receive: (RaftEnvelope) -> Void = { _ in }

    init(eventLoop: any EventLoop, peers: [NodeIndex: (host: String, port: Int)], maxFrameSize: Int, logger: Logger) {
        self.eventLoop = eventLoop
        self.peers = peers
        self.maxFrameSize = maxFrameSize
        self.logger = logger
    }

    /// Accepts peers' connections on `host:port`.
    func listen(host: String, port: Int) -> EventLoopFuture<any Channel> {
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let maxFrameSize = self.maxFrameSize
        return ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { Self.addPeerHandlers(to: $0, expectingPreamble: true, maxFrameSize: maxFrameSize, this) }
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
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Peers answer over their own connections; anything arriving here is read the same way.
            .channelInitializer { Self.addPeerHandlers(to: $0, expectingPreamble: false, maxFrameSize: maxFrameSize, this) }
            .connect(host: address.host, port: address.port)
            .whenComplete { result in
                let transport = this.value
                transport.connecting.remove(peer)
                switch result {
                case .success(let channel):
                    var preamble = channel.allocator.buffer(capacity: PeerPreamble.size)
                    PeerPreamble.write(into: &preamble)
                    channel.writeAndFlush(preamble, promise: nil)  // before any message: sends start after this
                    transport.channels[peer] = channel
                    transport.logger.info("connected to peer", metadata: ["peer": "\(peer)"])
                case .failure(let error):
                    transport.logger.debug("peer unreachable", metadata: ["peer": "\(peer)", "error": "\(error)"])
                }
            }
    }

    /// Frames in, messages handed to `receive`: the same on accepted and on opened connections, but
    /// only an accepted one starts with the opener's preamble.
    private static func addPeerHandlers(
        to channel: any Channel, expectingPreamble: Bool, maxFrameSize: Int, _ transport: NIOLoopBound<PeerTransport>
    ) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(PeerFrameDecoder(maxFrameSize: maxFrameSize, expectingPreamble: expectingPreamble)),
                PeerInboundHandler(logger: transport.value.logger) { transport.value.receive($0) },
            ])
        }
    }

    func close() {
        listener?.close(promise: nil)
        for channel in channels.values { channel.close(promise: nil) }
        channels.removeAll()
    }
}

/// Checks the preamble (on an accepted connection), then splits the byte stream into peer frames:
/// a `u32` length, then that many bytes.
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameSize: Int
    var expectingPreamble: Bool

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if expectingPreamble {
            guard buffer.readableBytes >= PeerPreamble.size else { return .needMoreData }
            try PeerPreamble.check(&buffer)
            expectingPreamble = false
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameSize else {
            throw ProtocolError(.frameTooLarge, "peer frame of \(length) bytes exceeds \(maxFrameSize)")
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
    private let deliver: (RaftEnvelope) -> Void
    private var snapshot = SnapshotAssembler()

    init(logger: Logger, _ deliver: @escaping (RaftEnvelope) -> Void) {
        self.logger = logger
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var body = unwrapInboundIn(data)
        do {
            if let envelope = try snapshot.add(try PeerFrame.decode(&body)) { deliver(envelope) }
        } catch {
            refuse(context: context, error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        refuse(context: context, error)
    }

    private func refuse(context: ChannelHandlerContext, _ error: any Error) {
        if let error = error as? ProtocolError {
            logger.warning(
                "closed a peer connection", metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error.message)"])
        }
        context.close(promise: nil)
    }
}
