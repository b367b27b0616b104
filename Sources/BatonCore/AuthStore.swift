import BatonProtocol

/// The cluster's users, roles and token hashes: part of the replicated state, as etcd's auth store
/// is, so every member enforces the same rules at the same log position.
///
/// Authentication is off until the first bootstrap entry (`StateMachineInput.bootstrapAuth`), which
/// creates the user `root` with the built-in role `root` (every permission). From then on every
/// command and query needs a principal whose token is still listed and whose roles grant what it asks.
public struct AuthStore: Sendable {
    struct User: Sendable, Equatable {
        /// Sorted.
        var roles: [String] = []
        var tokens: [TokenID: TokenHash] = [:]
    }

    /// The built-in role that grants everything. It cannot be changed or deleted.
    public static let rootRole = "root"
    /// The user the bootstrap token belongs to.
    public static let rootUser = "root"
    /// Tokens one user may hold at once (two are enough to rotate without downtime).
    public static let maxTokensPerUser = 16
    /// Permissions one role may hold.
    public static let maxPermissionsPerRole = 64

    /// Whether requests must authenticate.
    public internal(set) var enabled = false
    /// The hash of the token the last bootstrap installed.
    var bootstrap: TokenHash?
    var users: [String: User] = [:]
    /// Role name to its permissions, in the order granted. `root` is not stored.
    var roles: [String: [Permission]] = [:]
    /// Who holds each token: derived from `users`, never written to a snapshot.
    var owners: [TokenID: String] = [:]

    public init() {}

    /// The principal a token proves, if any user holds it. The lookup goes by the hash's first eight
    /// bytes; the whole hash is then compared in constant time.
    public func authenticate(_ hash: TokenHash) -> Principal? {
        guard let user = owners[hash.id], let stored = users[user]?.tokens[hash.id], stored.matches(hash) else { return nil }
        return Principal(user: user, token: hash.id)
    }

    /// Whether the bootstrap already installed this token (the leader proposes one only when not).
    public func isBootstrapped(with hash: TokenHash) -> Bool {
        bootstrap?.matches(hash) ?? false
    }

    /// What a request needs besides an authenticated principal.
    enum Need {
        /// The actions on one lock key or job type.
        case name(Permission.Resource, Permission.Actions, String)
        /// The actions on every name that starts with the prefix (a listing).
        case prefix(Permission.Resource, Permission.Actions, String)
        case clusterAdmin
    }

    /// Why `principal` may not do what `needs` asks, or nil when it may (always nil with auth off).
    func refusal(_ principal: Principal?, _ needs: [Need]) -> ErrorReply? {
        guard enabled else { return nil }
        guard let principal else {
            return ErrorReply(.unauthenticated, "authentication is on: send AUTH with a token first")
        }
        guard let user = users[principal.user] else {
            if principal.token == .certificate {
                return ErrorReply(.unauthenticated, "no user '\(principal.user)', which the client certificate names")
            }
            return ErrorReply(.unauthenticated, "user '\(principal.user)' no longer exists")
        }
        guard principal.token == .certificate || user.tokens[principal.token] != nil else {
            return ErrorReply(.unauthenticated, "token \(principal.token) of user '\(principal.user)' was removed")
        }
        for need in needs where !allows(user, need) {
            return ErrorReply(.permissionDenied, "user '\(principal.user)' lacks \(Self.describe(need))")
        }
        return nil
    }

    /// Whether `user` holds `root` or a role with `cluster:admin`.
    func isAdmin(_ user: String) -> Bool {
        guard let u = users[user] else { return false }
        return allows(u, .clusterAdmin)
    }

    func allows(_ user: User, _ need: Need) -> Bool {
        for role in user.roles {
            if role == Self.rootRole { return true }
            for p in roles[role] ?? [] {
                if p.resource == .cluster && p.actions.contains(.admin) { return true }
                switch need {
                case .name(let resource, let actions, let name):
                    if p.resource == resource && p.actions.isSuperset(of: actions) && p.covers(name) { return true }
                case .prefix(let resource, let actions, let prefix):
                    if p.resource == resource && p.actions.isSuperset(of: actions) && p.coversPrefix(prefix) { return true }
                case .clusterAdmin:
                    break
                }
            }
        }
        return false
    }

    static func describe(_ need: Need) -> String {
        switch need {
        case .name(let resource, let actions, let name): "\(Permission(resource, actions, name))"
        case .prefix(let resource, let actions, let prefix): "\(Permission(resource, actions, prefix + "*"))"
        case .clusterAdmin: "\(Permission(.cluster, .admin))"
        }
    }

    /// The listing AUTH_LIST answers with, sorted by name.
    var listing: AuthListing {
        AuthListing(
            enabled: enabled,
            users: users.keys.sorted().map { name in
                let u = users[name]!
                return AuthListing.User(name: name, roles: u.roles, tokens: u.tokens.keys.sorted())
            },
            roles: [AuthListing.Role(name: Self.rootRole, permissions: [Permission(.cluster, .admin)])]
                + roles.keys.sorted().map { AuthListing.Role(name: $0, permissions: roles[$0]!) })
    }

    mutating func rebuildOwners() {
        owners = [:]
        for (name, user) in users {
            for id in user.tokens.keys { owners[id] = name }
        }
    }
}
