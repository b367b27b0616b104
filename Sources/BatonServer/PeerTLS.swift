import BatonRaft
import NIOCore
import NIOSSL
import NIOTLS

/// Mutual TLS between cluster members on the raft port: each member presents its certificate, and
/// each checks the other's against the cluster's CA and its member name. A member's certificate
/// names its `nodeID` as a DNS subject alternative name (`deploy/make-certs.sh` makes them so).
///
/// The member that opens a connection checks the listener's certificate for the nodeID it dialled
/// (TLS hostname verification). The listener, which cannot know beforehand who dials, takes the
/// member its certificate names, refuses a certificate that names none (a client certificate from
/// the same CA, say), and drops the connection when a message claims to come from another member.
public struct PeerTLS: Sendable, Hashable, Codable {
    /// This member's certificate (then any intermediates), naming its nodeID. PEM.
    public var certificateFile: String
    public var keyFile: String
    /// The CA every member's certificate chains to. PEM.
    public var caFile: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case certificateFile, keyFile, caFile
    }

    public init(certificateFile: String, keyFile: String, caFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.caFile = caFile
    }

    /// The contexts both ends use, read from the files now; throws a message that names the file.
    func makeContexts() throws -> (listener: NIOSSLContext, opener: NIOSSLContext) {
        let identity = try PEMIdentity(certificateFile: certificateFile, keyFile: keyFile, section: "peerTLS")
        do {
            _ = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw ClientTLSError("peerTLS.caFile \(caFile): \(error)")
        }
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: identity.certificateChain, privateKey: identity.privateKey)
        server.minimumTLSVersion = .tlsv12
        server.trustRoots = .file(caFile)
        server.certificateVerification = .noHostnameVerification  // a certificate is required; its name is checked after
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv12
        client.certificateChain = identity.certificateChain
        client.privateKey = identity.privateKey
        client.trustRoots = .file(caFile)
        client.certificateVerification = .fullVerification
        do {
            return (try NIOSSLContext(configuration: server), try NIOSSLContext(configuration: client))
        } catch {
            throw ClientTLSError("peerTLS: \(error)")
        }
    }

    /// The DNS subject alternative names a certificate carries. (`_subjectAlternativeNames` is
    /// swift-nio-ssl's public, underscored reader of that extension; its own hostname verification
    /// reads the same.)
    static func names(in certificate: NIOSSLCertificate) -> [String] {
        let dns = certificate._subjectAlternativeNames().filter { $0.nameType == .dnsName }.map {
            $0.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        }
        return dns
    }
}

/// Which member the other end of a peer connection is: the member it dialled (opener), or the one its
/// certificate names (listener). Lives on the connection's event loop.
final class PeerIdentity {
    var member: NodeIndex?
    init(member: NodeIndex? = nil) { self.member = member }
}

/// On the listener's side: once the TLS handshake is done, takes the member the peer's certificate
/// names, or closes the connection when it names none.
final class PeerCertificateCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let members: [String: NodeIndex]
    private let identity: PeerIdentity
    private let refused: (String) -> Void

    init(members: [String: NodeIndex], identity: PeerIdentity, refused: @escaping (String) -> Void) {
        self.members = members
        self.identity = identity
        self.refused = refused
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            let names = certificate.map(PeerTLS.names(in:)) ?? []
            if let member = names.lazy.compactMap({ self.members[$0] }).first {
                identity.member = member
            } else {
                refused("its certificate names no member (\(names.isEmpty ? "no DNS name" : names.joined(separator: ", ")))")
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
