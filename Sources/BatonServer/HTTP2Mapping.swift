import BatonProtocol
import NIOHTTP1

/// The HTTP status each error code is answered with over HTTP/2; the body still carries the error
/// reply, and the `baton-error` header names the code. See PROTOCOL.md, "HTTP/2".
enum HTTP2Mapping {
    static func status(for code: ErrorCode) -> HTTPResponseStatus {
        switch code {
        case .malformedFrame, .unsupportedVersion, .invalidArgument, .helloRequired: .badRequest
        case .unknownOpcode, .jobNotFound, .lockNotHeld: .notFound
        case .frameTooLarge: .payloadTooLarge
        case .staleToken, .claimLost, .invalidState, .sequenceTooOld, .sequenceReused: .conflict
        case .shuttingDown: .serviceUnavailable
        case .notLeader: .misdirectedRequest
        case .idleTimeout: .requestTimeout
        case .quotaExceeded: .insufficientStorage
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        default: .internalServerError
        }
    }
}
