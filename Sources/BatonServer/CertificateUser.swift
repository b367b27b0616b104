import NIOSSL
import SwiftASN1

/// The user a client certificate names: its subject's common name (CN), as etcd's client-cert
/// authentication takes it. Read from the certificate's DER with swift-asn1, since swift-nio-ssl
/// keeps its reader of the common name internal.
enum CertificateUser {
    static let commonName: ASN1ObjectIdentifier = "2.5.4.3"

    /// The last (most significant) common name of the certificate's subject; nil when it has none.
    static func name(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let root = try? DER.parse(der) else { return nil }
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
        //   signature, issuer, validity, subject, ... }, ... }
        guard case .constructed(let certificateParts) = root.content, let tbs = certificateParts.first(where: { _ in true }),
            case .constructed(let tbsParts) = tbs.content
        else { return nil }
        var fields = Array(tbsParts)
        if let first = fields.first, first.identifier.tagClass == .contextSpecific { fields.removeFirst() }
        guard fields.count > 4, case .constructed(let rdns) = fields[4].content else { return nil }
        var found: String?
        for rdn in rdns {
            guard case .constructed(let attributes) = rdn.content else { continue }
            for attribute in attributes {
                guard case .constructed(let pair) = attribute.content else { continue }
                let parts = Array(pair)
                guard parts.count == 2, let type = try? ASN1ObjectIdentifier(derEncoded: parts[0]), type == commonName,
                    case .primitive(let bytes) = parts[1].content
                else { continue }
                found = String(decoding: bytes, as: UTF8.self)
            }
        }
        return found
    }
}
