import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// On a listening channel, behind NIO's `AcceptBackoffHandler`: says in the log, at most once per
/// 10 s, that accepting failed and is paused (issue 33: out of descriptors, the node spun a core on
/// failing accepts and logged nothing).
final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let logger: Logger
    private let listener: String
    private var lastLogged: NIODeadline?
    private var since = 0

    init(logger: Logger, listener: String) {
        self.logger = logger
        self.listener = listener
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        since += 1
        let now = NIODeadline.now()
        if let last = lastLogged, now - last < .seconds(10) { return }
        lastLogged = now
        var hint = ""
        if let io = error as? IOError, io.errnoCode == EMFILE || io.errnoCode == ENFILE {
            hint = "; out of file descriptors: raise LimitNOFILE (ulimit -n) or lower maxConnections"
        }
        logger.warning(
            "accepting a connection failed; accepting paused for 1 s\(hint)",
            metadata: ["listener": "\(listener)", "error": "\(error)", "failures": "\(since)"])
        since = 0
    }

    /// The handlers a listening channel needs: NIO's back-off (the plain `bind` adds none), then this.
    static func install(on channel: any Channel, logger: Logger, listener: String) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: true))
            try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger, listener: listener))
        }
    }
}
