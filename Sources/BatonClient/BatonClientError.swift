import BatonClientCore
import BatonProtocol

/// Why a client call failed.
public enum BatonClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The node answered with an error.
    case server(ErrorReply)
    /// No endpoint accepted a connection.
    case connectFailed(String)
    /// The connection closed before the answer came.
    case connectionClosed
    /// No answer came within the request timeout.
    case timedOut
    /// The node answered with a reply that does not fit the request.
    case unexpectedReply(String)
    /// A lock could not be taken before its wait ran out; it is held by `holder`.
    case lockBusy(key: String, holder: String)
    /// The lease on a lock or a job claim ended while its holder still worked.
    case leaseLost(String)
    /// The client was shut down.
    case shutDown

    /// Whether sending the same request again (with the same sequence number) may succeed.
    public var isRetriable: Bool {
        switch self {
        case .server(let e): e.code.isRetriable
        case .connectFailed, .connectionClosed, .timedOut: true
        case .unexpectedReply, .lockBusy, .leaseLost, .shutDown: false
        }
    }

    /// What this failure means for sending the request again (`Attempts`).
    var attemptFailure: AttemptFailure {
        switch self {
        case .server(let e): AttemptFailure(e)
        case .connectFailed, .connectionClosed: .connectionLost
        case .timedOut: .timedOut
        case .unexpectedReply, .lockBusy, .leaseLost, .shutDown: .final
        }
    }

    /// The server's error code, when the node answered with an error.
    public var serverCode: ErrorCode? {
        if case .server(let e) = self { return e.code }
        return nil
    }

    public var description: String {
        switch self {
        case .server(let e): "\(e)"
        case .connectFailed(let m): "cannot connect: \(m)"
        case .connectionClosed: "connection closed before the answer came"
        case .timedOut: "request timed out"
        case .unexpectedReply(let m): "unexpected reply: \(m)"
        case .lockBusy(let key, let holder): "lock '\(key)' is held by '\(holder)'"
        case .leaseLost(let m): "lease lost: \(m)"
        case .shutDown: "client is shut down"
        }
    }
}
