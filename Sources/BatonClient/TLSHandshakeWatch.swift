import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Sits after the TLS handler and keeps the error a failed handshake raised, so the connection can
/// say "TLS handshake failed" whatever the request that was waiting saw first (a write on the
/// closing channel fails with "I/O on closed channel" before the error arrives).
final class TLSHandshakeWatch: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let failure = NIOLockedValueBox<String?>(nil)

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError { failure.withLockedValue { $0 = "\(error)" } }
        context.fireErrorCaught(error)
    }

    /// What a client is told when the handshake failed.
    static func message(_ failure: String) -> String {
        "TLS handshake failed (\(failure)): the node's certificate is not from the CA trusted here, names another host, or has expired; or the node refused this client's certificate"
    }
}
