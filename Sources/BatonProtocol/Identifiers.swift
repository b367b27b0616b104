/// Identifies one client instance for the lifetime of its process. Chosen by the client (random 64 bits)
/// and sent in HELLO; the server remembers recent answers per client so a retried request applies once.
public struct ClientID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue, radix: 16) }
}

/// A client's per-request sequence number. Strictly increasing per client; a retry reuses the number.
public struct SequenceNumber: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// Matches a reply to its request on one connection. Chosen by the client; echoed by the server.
public struct RequestID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
    /// Reserved for the frames a node sends on its own (idle timeout, shutdown, a framing error); a
    /// request that carries it is refused, not applied (PROTOCOL.md §1).
    public static let node = RequestID(0)
}

/// A token handed out with every lock grant and job claim. Tokens only ever grow, across all keys and
/// jobs, so a resource guarded by a lock can refuse writes that carry a smaller token than one it has seen.
public struct FencingToken: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// Identifies a job. Assigned by the server, increasing in order of addition; never reused.
public struct JobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A point in time: milliseconds since the Unix epoch, as stamped by the node that applies a command.
public struct Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    @inlinable public init(milliseconds: UInt64) { self.milliseconds = milliseconds }
    public static let zero = Timestamp(milliseconds: 0)
    public static func < (a: Self, b: Self) -> Bool { a.milliseconds < b.milliseconds }
    /// `self` moved later by `d`, saturating instead of overflowing.
    @inlinable public func adding(_ d: Milliseconds) -> Timestamp {
        let (sum, overflow) = milliseconds.addingReportingOverflow(UInt64(d.rawValue))
        return Timestamp(milliseconds: overflow ? .max : sum)
    }
    /// Milliseconds from `self` until `later`, or zero when `later` is not later.
    @inlinable public func distance(to later: Timestamp) -> UInt64 {
        later.milliseconds > milliseconds ? later.milliseconds - milliseconds : 0
    }
    public var description: String { "\(milliseconds)ms" }
}

/// A length of time in milliseconds, as carried on the wire (u32: at most about 49 days).
public struct Milliseconds: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(integerLiteral value: UInt32) { self.rawValue = value }
    public static let zero = Milliseconds(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "\(rawValue)ms" }

    /// The time from `now` until `end` (zero when `end` is not later), clamped to what the wire carries.
    @inlinable public static func left(until end: Timestamp, at now: Timestamp) -> Milliseconds {
        Milliseconds(UInt32(clamping: now.distance(to: end)))
    }
}

/// Names one bearer token of a user: the first 8 bytes of its SHA-256 hash, big-endian. Listing and
/// removing a token go by it; the token itself is never stored.
public struct TokenID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { self == .certificate ? "certificate" : String(rawValue, radix: 16).leftPaddedHex(16) }
    /// Not a token: the user was proved by a client certificate naming it (no token hash has this id).
    public static let certificate = TokenID(0)
}

extension String {
    func leftPaddedHex(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
