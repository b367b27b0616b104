/// Who waits for one answer: a request on a connection, numbered by the shell that carries the
/// node's actions out. The node only hands it back in `NodeAction.answer`.
package struct RouteID: Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt64
    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package var description: String { String(rawValue) }
}

/// One hand-over of a Raft Ready's durable part to storage; storage reports them done in order.
package struct PersistID: Hashable, Sendable, Comparable, CustomStringConvertible {
    package var rawValue: UInt64
    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    package var description: String { String(rawValue) }
}
