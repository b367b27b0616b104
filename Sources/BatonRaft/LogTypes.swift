// The vocabulary of the replicated log, shared by the Raft core and the storage under it.

/// A Raft term: a period with at most one leader. Only ever grows.
public struct Term: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let zero = Term(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// The position of an entry in the log, from 1. Zero means "before the first entry".
public struct LogIndex: Hashable, Sendable, Comparable, Strideable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let zero = LogIndex(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public func distance(to other: Self) -> Int64 { Int64(bitPattern: other.rawValue &- rawValue) }
    public func advanced(by n: Int64) -> Self { LogIndex(UInt64(bitPattern: Int64(bitPattern: rawValue) &+ n)) }
    public var description: String { String(rawValue) }
}

/// A linearizable read, as the node that asked for its read index numbers it (from 1, growing).
public struct ReadID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let zero = ReadID(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var next: ReadID { ReadID(rawValue + 1) }
    public var description: String { String(rawValue) }
}

/// One Ready's durable part (`RaftReady.persist`), to report with `Raft.persisted(_:)` once it is
/// durable. Numbered from 1 in the order they are handed out; they are reported in that order.
public struct PersistID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A node of the cluster, by its position in the configured membership (1, 2, 3, …). Zero: none.
public struct NodeIndex: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let none = NodeIndex(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// One entry of the replicated log: opaque command bytes at a position, written in a term.
public struct LogEntry: Hashable, Sendable {
    public var term: Term
    public var index: LogIndex
    public var data: [UInt8]
    public init(term: Term, index: LogIndex, data: [UInt8]) {
        self.term = term
        self.index = index
        self.data = data
    }
}

/// What a node must have on disk before it answers any message: its term, its vote in that term,
/// and the highest index it knows to be committed.
public struct HardState: Hashable, Sendable {
    public var term: Term
    public var vote: NodeIndex
    public var commit: LogIndex
    public init(term: Term = .zero, vote: NodeIndex = .none, commit: LogIndex = .zero) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The state machine as it stood after applying the entry at `index`, whose term was `term`.
public struct Snapshot: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
    /// The state machine's own encoding of its state (uncompressed).
    public var data: [UInt8]

    public init(index: LogIndex, term: Term, data: [UInt8]) {
        self.index = index
        self.term = term
        self.data = data
    }

    /// Before any entry.
    public static let empty = Snapshot(index: .zero, term: .zero, data: [])
}
