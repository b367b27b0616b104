import BatonRaft
import NIOConcurrencyHelpers
import NIOSSL

/// The TLS contexts a node serves with, read from the files its configuration names: the client
/// port's, the HTTP/2 port's (the same certificate, offering `h2` by ALPN), and both ends of the
/// peer connections. `reload()` reads the files again (on SIGHUP, as etcd reloads its
/// certificates): connections made after it use the new certificates, open ones keep theirs. A
/// reload that cannot read every file changes nothing.
final class CertificateStore: Sendable {
    struct Contexts: Sendable {
        var client: NIOSSLContext?
        var http2: NIOSSLContext?
        var peerListener: NIOSSLContext?
        var peerOpener: NIOSSLContext?
    }

    private let tls: ClientTLS?
    private let peerTLS: PeerTLS?
    private let contexts: NIOLockedValueBox<Contexts>

    init(tls: ClientTLS?, peerTLS: PeerTLS?) throws {
        self.tls = tls
        self.peerTLS = peerTLS
        self.contexts = NIOLockedValueBox(try Self.read(tls: tls, peerTLS: peerTLS))
    }

    var current: Contexts { contexts.withLockedValue { $0 } }

    /// Reads every file again; throws (and keeps the contexts in use) when one cannot be used.
    func reload() throws {
        let fresh = try Self.read(tls: tls, peerTLS: peerTLS)
        contexts.withLockedValue { $0 = fresh }
    }

    private static func read(tls: ClientTLS?, peerTLS: PeerTLS?) throws -> Contexts {
        var c = Contexts()
        if let tls {
            c.client = try tls.makeContext()
            c.http2 = try tls.makeContext(applicationProtocols: ["h2"])
        }
        if let peerTLS {
            (c.peerListener, c.peerOpener) = try peerTLS.makeContexts()
        }
        return c
    }
}
