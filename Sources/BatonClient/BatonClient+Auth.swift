import BatonProtocol

/// Users, roles and tokens (docs/operating.md, "Securing a cluster"). Each needs the `cluster:admin` permission
/// once authentication is on; before, anyone may prepare users and roles.
extension BatonClient {
    public func addUser(_ name: String) async throws {
        try await authChange(.addUser(name: name))
    }

    /// Deletes the user and its tokens; its connections are refused from then on.
    public func deleteUser(_ name: String) async throws {
        try await authChange(.deleteUser(name: name))
    }

    public func grantRole(_ role: String, to user: String) async throws {
        try await authChange(.grantRole(user: user, role: role))
    }

    public func revokeRole(_ role: String, from user: String) async throws {
        try await authChange(.revokeRole(user: user, role: role))
    }

    /// Makes a new bearer token for `user` (256 random bits) and registers its hash: the node never
    /// sees the token. Returns the token, to hand to the user's services once, and its id.
    public func addToken(for user: String) async throws -> (token: String, id: TokenID) {
        let token = TokenHash.newToken()
        guard case .tokenAdded(let id) = try await command(.addToken(user: user, hash: TokenHash(of: token))) else {
            throw unexpected("TOKEN_ADD")
        }
        return (token, id)
    }

    public func removeToken(_ id: TokenID, of user: String) async throws {
        try await authChange(.removeToken(user: user, id: id))
    }

    public func addRole(_ name: String) async throws {
        try await authChange(.addRole(name: name))
    }

    /// Deletes the role and takes it from every user that had it.
    public func deleteRole(_ name: String) async throws {
        try await authChange(.deleteRole(name: name))
    }

    public func grant(_ permission: Permission, to role: String) async throws {
        try await authChange(.grantPermission(role: role, permission))
    }

    public func revoke(_ permission: Permission, from role: String) async throws {
        try await authChange(.revokePermission(role: role, permission))
    }

    /// Every user (with roles and token ids) and every role (with permissions).
    public func authListing() async throws -> AuthListing {
        guard case .auth(let listing) = try await call(.query(.listAuth)) else { throw unexpected("AUTH_LIST") }
        return listing
    }

    private func authChange(_ change: Command) async throws {
        guard case .authUpdated = try await command(change) else { throw unexpected(change.opcode.name) }
    }
}
