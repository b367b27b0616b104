import NIOSSL

/// A certificate chain and its private key, read from PEM files; a file that cannot be used is
/// named in the error with the configuration key that gave it (`tls.keyFile`).
struct PEMIdentity {
    var chain: [NIOSSLCertificate]
    var key: NIOSSLPrivateKey

    init(certificateFile: String, keyFile: String, section: String) throws {
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw ClientTLSError("\(section).certificateFile \(certificateFile): \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw ClientTLSError("\(section).keyFile \(keyFile): \(error)")
        }
    }

    var certificateChain: [NIOSSLCertificateSource] { chain.map { .certificate($0) } }
    var privateKey: NIOSSLPrivateKeySource { .privateKey(key) }
}
