import BatonProtocol
import Foundation

/// What a request's header block says, read field by field from the bytes nghttp2 hands over,
/// without building a `String` for any field the node expects (profiled: a string per header and a
/// dictionary lookup of the path cost more than nghttp2's own work for a request).
struct HTTP2RequestHead {
    /// The operation the path names; nil for an unknown path (`path` keeps it for the answer).
    var opcode: Opcode?
    var path = ""
    var isPost = false
    /// Nil: no `content-type`.
    var isBatonContentType: Bool?
    /// The `baton-client-id` header: nil when absent; `.invalid` when not a non-zero 64-bit hex number.
    var clientID: ClientIDField?
    /// The token of an `authorization: Bearer <token>` header; `.invalid` for another scheme.
    var bearer: BearerField?
    /// Bytes of every name and value so far (the header list's size).
    var bytes = 0

    enum BearerField: Equatable {
        case token(String)
        case invalid
    }

    enum ClientIDField: Equatable {
        case valid(ClientID)
        case invalid
    }

    /// Takes one field.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        bytes += name.count + value.count
        if Self.equal(name, Self.pathName) {
            opcode = Self.paths.first { Self.equal(value, $0.bytes) }?.opcode
            if opcode == nil {
                path = String(decoding: value, as: UTF8.self)
                opcode = HTTP2Route.opcode(path: Substring(path))
            }
        } else if Self.equal(name, Self.methodName) {
            isPost = Self.equal(value, Self.post)
        } else if Self.equal(name, Self.contentTypeName) {
            isBatonContentType = Self.equal(value, Self.contentType) || Self.isBatonContentType(String(decoding: value, as: UTF8.self))
        } else if Self.equal(name, Self.clientIDName) {
            clientID = Self.hexClientID(value).map { .valid($0) } ?? .invalid
        } else if Self.equal(name, Self.authorizationName) {
            let text = String(decoding: value, as: UTF8.self)
            let scheme = "bearer "
            bearer = text.lowercased().hasPrefix(scheme) ? .token(String(text.dropFirst(scheme.count))) : .invalid
        }
    }

    /// `application/x-baton` with parameters or in other case (the exact bytes are checked first).
    static func isBatonContentType(_ value: String) -> Bool {
        let type = value.split(separator: ";", maxSplits: 1).first ?? ""
        return type.trimmingCharacters(in: .whitespaces).lowercased() == HTTP2Route.contentType
    }

    /// 1 to 16 hex digits, not all zero.
    static func hexClientID(_ value: UnsafeRawBufferPointer) -> ClientID? {
        guard (1...16).contains(value.count) else { return nil }
        var raw: UInt64 = 0
        for byte in value {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            raw = raw << 4 | UInt64(digit)
        }
        return raw == 0 ? nil : ClientID(raw)
    }

    static func equal(_ bytes: UnsafeRawBufferPointer, _ constant: [UInt8]) -> Bool {
        guard bytes.count == constant.count, let base = bytes.baseAddress else { return false }
        return constant.withUnsafeBytes { memcmp(base, $0.baseAddress!, constant.count) == 0 }
    }

    static let pathName = Array(":path".utf8)
    static let methodName = Array(":method".utf8)
    static let contentTypeName = Array("content-type".utf8)
    static let clientIDName = Array(HTTP2Route.clientIDHeader.utf8)
    static let authorizationName = Array("authorization".utf8)
    static let post = Array("POST".utf8)
    static let contentType = Array(HTTP2Route.contentType.utf8)
    /// Every operation's path, as bytes. A query string is not expected, and goes the slow way.
    static let paths: [(bytes: [UInt8], opcode: Opcode)] = Opcode.requests.map { (Array(HTTP2Route.path($0).utf8), $0) }
}
