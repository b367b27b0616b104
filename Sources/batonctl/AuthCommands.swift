import ArgumentParser
import BatonClient
import BatonProtocol

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Users: who may connect, with which roles and tokens.",
        subcommands: [List.self, Add.self, Delete.self, Grant.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every user, its roles and its token ids.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let listing = try await global.withClient { try await $0.authListing() }
            struct UserView: Codable { var name: String; var roles: [String]; var tokens: [String] }
            let views = listing.users.map { UserView(name: $0.name, roles: $0.roles, tokens: $0.tokens.map(\.description)) }
            global.emit(views) {
                (listing.enabled ? "" : "authentication is off (no admin token installed)\n")
                    + table(["USER", "ROLES", "TOKENS"], views.map { [$0.name, $0.roles.joined(separator: ","), $0.tokens.joined(separator: ",")] })
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user, with roles, and print a new token for it (shown once; the cluster keeps only its hash).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var name: String
        @Option(name: .customLong("role"), help: "A role to grant (repeat for more).") var roles: [String] = []
        @Flag(help: "Make no token (add one later with `batonctl token add`).") var noToken = false

        func run() async throws {
            let token = try await global.withClient { c -> (token: String, id: TokenID)? in
                try await c.addUser(name)
                for role in roles { try await c.grantRole(role, to: name) }
                return noToken ? nil : try await c.addToken(for: name)
            }
            struct Added: Codable { var user: String; var roles: [String]; var token: String?; var tokenID: String? }
            global.emit(Added(user: name, roles: roles, token: token?.token, tokenID: token?.id.description)) {
                guard let token else { return "added user \(name)" }
                return "added user \(name); its token (id \(token.id)), shown only now:\n\(token.token)"
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user and its tokens; its connections are refused from then on.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            try await global.withClient { try await $0.deleteUser(name) }
            struct Deleted: Codable { var user: String }
            global.emit(Deleted(user: name)) { "deleted user \(name)" }
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a user a role.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var name: String
        @Argument(help: "The role.") var role: String

        func run() async throws {
            try await global.withClient { try await $0.grantRole(role, to: name) }
            struct Granted: Codable { var user: String; var role: String }
            global.emit(Granted(user: name, role: role)) { "user \(name) has role \(role)" }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a role from a user.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var name: String
        @Argument(help: "The role.") var role: String

        func run() async throws {
            try await global.withClient { try await $0.revokeRole(role, from: name) }
            struct Revoked: Codable { var user: String; var role: String }
            global.emit(Revoked(user: name, role: role)) { "user \(name) no longer has role \(role)" }
        }
    }
}

struct Roles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Roles: what their users may do.",
        discussion: """
            A permission is RESOURCE:ACTIONS:PATTERN. lock actions: write (acquire, renew, release), read. \
            job actions: add, work (claim, extend, complete, fail, abort), read, admin (delete, requeue, purge). \
            PATTERN is one lock key or job type, or a prefix ending in '*' ('*' alone: all). \
            cluster:admin (no pattern) grants everything: force release, leases, users and roles. \
            Examples: job:add,work:thumbnail  lock:write,read:reports/*  cluster:admin. \
            The role root is built in and grants everything.
            """,
        subcommands: [List.self, Add.self, Delete.self, Grant.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every role and its permissions.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let listing = try await global.withClient { try await $0.authListing() }
            struct RoleView: Codable { var name: String; var permissions: [String] }
            let views = listing.roles.map { RoleView(name: $0.name, permissions: $0.permissions.map(\.description)) }
            global.emit(views) { table(["ROLE", "PERMISSIONS"], views.map { [$0.name, $0.permissions.joined(separator: " ")] }) }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a role, with permissions.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The role's name.") var name: String
        @Argument(help: "Permissions to grant, RESOURCE:ACTIONS:PATTERN.") var permissions: [PermissionArgument] = []

        func run() async throws {
            try await global.withClient { c in
                try await c.addRole(name)
                for p in permissions { try await c.grant(p.permission, to: name) }
            }
            struct Added: Codable { var role: String; var permissions: [String] }
            global.emit(Added(role: name, permissions: permissions.map(\.permission.description))) { "added role \(name)" }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a role; every user that had it loses it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The role's name.") var name: String

        func run() async throws {
            try await global.withClient { try await $0.deleteRole(name) }
            struct Deleted: Codable { var role: String }
            global.emit(Deleted(role: name)) { "deleted role \(name)" }
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant permissions to a role.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The role's name.") var name: String
        @Argument(help: "RESOURCE:ACTIONS:PATTERN, one or more.") var permissions: [PermissionArgument]

        func run() async throws {
            try await global.withClient { c in for p in permissions { try await c.grant(p.permission, to: name) } }
            struct Granted: Codable { var role: String; var permissions: [String] }
            global.emit(Granted(role: name, permissions: permissions.map(\.permission.description))) { "granted to role \(name)" }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take permissions (actions on a pattern) from a role.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The role's name.") var name: String
        @Argument(help: "RESOURCE:ACTIONS:PATTERN, one or more.") var permissions: [PermissionArgument]

        func run() async throws {
            try await global.withClient { c in for p in permissions { try await c.revoke(p.permission, from: name) } }
            struct Revoked: Codable { var role: String; var permissions: [String] }
            global.emit(Revoked(role: name, permissions: permissions.map(\.permission.description))) { "revoked from role \(name)" }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Bearer tokens. To rotate one without downtime: add a new token, deploy it, then remove the old one.",
        subcommands: [New.self, Add.self, Remove.self])

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random token (256 bits, 64 hex digits) without asking any node: for auth.adminTokenFile.")

        func run() {
            print(TokenHash.newToken())
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make one more token for a user and print it (shown only now).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var user: String

        func run() async throws {
            let (token, id) = try await global.withClient { try await $0.addToken(for: user) }
            struct Added: Codable { var user: String; var token: String; var tokenID: String }
            global.emit(Added(user: user, token: token, tokenID: id.description)) { "token \(id) of user \(user), shown only now:\n\(token)" }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user's token by its id (as `user list` shows it).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name.") var user: String
        @Argument(help: "The token's id, 16 hex digits.") var id: String

        func run() async throws {
            guard let raw = UInt64(id, radix: 16) else { throw ValidationError("'\(id)' is not a token id (16 hex digits)") }
            try await global.withClient { try await $0.removeToken(TokenID(raw), of: user) }
            struct Removed: Codable { var user: String; var tokenID: String }
            global.emit(Removed(user: user, tokenID: id)) { "removed token \(id) of user \(user)" }
        }
    }
}

/// A permission as batonctl takes it: `job:add,work:thumbnail`, `cluster:admin`.
struct PermissionArgument: ExpressibleByArgument {
    var permission: Permission

    init?(argument: String) {
        guard case .success(let p) = Permission.parse(argument) else { return nil }
        permission = p
    }
}
