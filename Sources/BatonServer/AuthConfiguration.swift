import BatonProtocol
import Foundation

/// Authentication (docs/operating.md, "Securing a cluster"): the file that holds the admin token. The leader
/// installs that token for the user `root` (role `root`, every permission) when the cluster does not
/// hold it yet, and from then on every request must authenticate. Give every member the same file.
/// Writing a new token into the files and restarting the members replaces `root`'s old one: the way
/// back in when the admin token is lost.
public struct AuthConfiguration: Sendable, Hashable, Codable {
    /// One line: the admin token, at least `minimumTokenLength` characters (64 hex digits from
    /// `batonctl token new` or `openssl rand -hex 32`).
    public var adminTokenFile: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case adminTokenFile
    }

    /// A shorter admin token is refused: it could be guessed.
    public static let minimumTokenLength = 32

    public init(adminTokenFile: String) {
        self.adminTokenFile = adminTokenFile
    }

    /// A warning when other users may read the admin token file (its mode allows group or others),
    /// or nil.
    func adminTokenFileWarning() -> String? {
        var st = stat()
        guard stat(adminTokenFile, &st) == 0, st.st_mode & 0o077 != 0 else { return nil }
        return "auth.adminTokenFile \(adminTokenFile) may be read by other users (mode \(String(st.st_mode & 0o777, radix: 8))): whoever reads it is the cluster's admin; chmod 600 it"
    }

    /// The admin token's hash, read from the file now; throws a message that names the file.
    func adminTokenHash() throws -> TokenHash {
        let text: String
        do {
            text = try String(contentsOfFile: adminTokenFile, encoding: .utf8)
        } catch {
            throw ConfigurationError(.unreadableFile, "auth.adminTokenFile \(adminTokenFile): \(error.localizedDescription)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= Self.minimumTokenLength, !token.contains(where: \.isWhitespace) else {
            throw ConfigurationError(
                .unreadableFile,
                "auth.adminTokenFile \(adminTokenFile): the token must be one word of at least \(Self.minimumTokenLength) characters (make one with `batonctl token new`)")
        }
        return TokenHash(of: token)
    }
}
