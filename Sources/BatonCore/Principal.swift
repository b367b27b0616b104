import BatonProtocol

/// Who a request comes from once its connection authenticated: a user, and the token it showed. Log
/// entries carry it, so every member checks the same permissions at the same log position.
public struct Principal: Hashable, Sendable, CustomStringConvertible {
    public var user: String
    /// The token the connection showed, whose removal refuses the entry; `TokenID.certificate` when a
    /// client certificate proved the user.
    public var token: TokenID
    public init(user: String, token: TokenID) {
        self.user = user
        self.token = token
    }
    public var description: String { "\(user) (token \(token))" }
}
