/// Who waits for one answer: a request on a connection, numbered by the shell that carries the
/// node's actions out. The node only hands it back in `NodeAction.answer`.
package struct RouteID: Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt64
    package init(_ rawValue: UInt64) { self.rawValue = rawValue }
    package var description: String { String(rawValue) }
}
