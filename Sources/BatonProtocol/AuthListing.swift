/// The cluster's users and roles, as AUTH_LIST answers (no token is in it, only token ids).
public struct AuthListing: Hashable, Sendable {
    public struct User: Hashable, Sendable {
        public var name: String
        public var roles: [String]
        public var tokens: [TokenID]
        public init(name: String, roles: [String], tokens: [TokenID]) {
            self.name = name
            self.roles = roles
            self.tokens = tokens
        }
    }

    public struct Role: Hashable, Sendable {
        public var name: String
        public var permissions: [Permission]
        public init(name: String, permissions: [Permission]) {
            self.name = name
            self.permissions = permissions
        }
    }

    /// Whether requests must authenticate (the cluster was bootstrapped with an admin token).
    public var enabled: Bool
    /// By name.
    public var users: [User]
    /// By name.
    public var roles: [Role]

    public init(enabled: Bool, users: [User], roles: [Role]) {
        self.enabled = enabled
        self.users = users
        self.roles = roles
    }
}
