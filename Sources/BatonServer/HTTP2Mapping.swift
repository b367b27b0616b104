import BatonProtocol
import NIOHTTP1

/// How Baton's messages travel over HTTP/2: `POST /baton/v1/<operation>` with
/// `content-type: application/x-baton`; the body is the message body of the TCP protocol (the bytes
/// after the frame header), the reply body likewise. See PROTOCOL.md, "HTTP/2".
enum HTTP2Mapping {
    static let pathPrefix = "/baton/v1/"
    static let contentType = "application/x-baton"
    /// Header carrying the client id (16 hex digits) that commands need for retry deduplication.
    static let clientIDHeader = "baton-client-id"
    static let clientNameHeader = "baton-client-name"
    /// Response header naming the error code of an error reply.
    static let errorHeader = "baton-error"

    /// The operation name in a path: the opcode's name in lower case (`lock_acquire`).
    static func operation(_ opcode: Opcode) -> String { opcode.name.lowercased() }

    static let opcodes: [String: Opcode] = Dictionary(uniqueKeysWithValues: Opcode.requests.map { (operation($0), $0) })

    /// The HTTP status an error code is answered with; the body still carries the error reply.
    static func status(for code: ErrorCode) -> HTTPResponseStatus {
        switch code {
        case .malformedFrame, .unsupportedVersion, .invalidArgument, .helloRequired: .badRequest
        case .unknownOpcode, .jobNotFound, .lockNotHeld: .notFound
        case .frameTooLarge: .payloadTooLarge
        case .staleToken, .claimLost, .invalidState, .sequenceTooOld: .conflict
        case .shuttingDown: .serviceUnavailable
        case .idleTimeout: .requestTimeout
        default: .internalServerError
        }
    }
}
