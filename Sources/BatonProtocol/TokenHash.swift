import Crypto

/// The SHA-256 hash of a bearer token's UTF-8 text: all a node keeps of a token (PROTOCOL.md §14).
/// Compared in constant time, so how long a comparison takes says nothing of where two hashes differ.
public struct TokenHash: Hashable, Sendable {
    /// The 32 bytes, as four big-endian words.
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// The hash of `token`.
    public init(of token: String) {
        self.init(bytes: Array(SHA256.hash(data: Array(token.utf8))))!
    }

    /// The hash from its 32 bytes; nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        func word(_ i: Int) -> UInt64 { bytes[i * 8..<i * 8 + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        words = (word(0), word(1), word(2), word(3))
    }

    public var bytes: [UInt8] {
        [words.0, words.1, words.2, words.3].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (56 - 8 * $0)) } }
    }

    /// The id a node lists the token under.
    public var id: TokenID { TokenID(words.0) }

    /// Whether both are the same hash, in time independent of the bytes.
    public func matches(_ other: TokenHash) -> Bool {
        ((words.0 ^ other.words.0) | (words.1 ^ other.words.1) | (words.2 ^ other.words.2) | (words.3 ^ other.words.3)) == 0
    }

    public static func == (a: TokenHash, b: TokenHash) -> Bool { a.matches(b) }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// The longest token a node hashes; a longer one is refused unread.
    public static let maxTokenBytes = 1024

    /// A new bearer token: 256 random bits from the system's secure generator, as 64 hex digits.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 16).leftPaddedHex(16) }.joined()
    }
}
