import NIOSSL

/// TLS on the client port (PROTOCOL.md §1, "TLS"): the node's certificate chain and key, and, for
/// mutual TLS, the CA its clients' certificates must chain to. Files in PEM.
public struct ClientTLS: Sendable, Hashable, Codable {
    /// The node's certificate, then any intermediates.
    public var certificateFile: String
    public var keyFile: String
    /// The CA that client certificates must chain to. Nil: clients are not asked for one.
    public var clientCAFile: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case certificateFile, keyFile, clientCAFile
    }

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    /// The server context, read from the files now; throws a message that names the file at fault.
    /// `applicationProtocols`: what ALPN offers (`h2` on the HTTP/2 port).
    func makeContext(applicationProtocols: [String] = []) throws -> NIOSSLContext {
        let identity = try PEMIdentity(certificateFile: certificateFile, keyFile: keyFile, section: "tls")
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: identity.certificateChain, privateKey: identity.privateKey)
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = applicationProtocols
        if let clientCAFile {
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .file(clientCAFile)
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ClientTLSError("tls: \(error)")
        }
    }
}

/// A TLS file that cannot be used; the message names it.
public struct ClientTLSError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
