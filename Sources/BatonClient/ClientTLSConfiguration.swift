import NIOSSL

extension BatonClient {
    /// TLS to the nodes' client port (PROTOCOL.md §1, "TLS"). Files in PEM.
    public struct TLS: Sendable, Hashable {
        /// The CA the node's certificate must chain to. Nil: the system's trust roots.
        public var caFile: String?
        /// This client's certificate and key, for a node that asks for one (mutual TLS).
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }

        /// The client context: the node's certificate is checked against the CA and against the
        /// endpoint's name, or its IP address when the endpoint is one.
        /// `applicationProtocols`: what ALPN offers (`h2` for the HTTP/2 transport).
        func makeContext(applicationProtocols: [String] = []) throws -> NIOSSLContext {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = applicationProtocols
            if let caFile { tls.trustRoots = .file(caFile) }
            if let certificateFile, let keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: tls)
        }
    }
}
