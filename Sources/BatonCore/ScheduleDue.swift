import BatonProtocol

/// A schedule's place in the queue of the slots to come: an index the leader reads, not state.
struct ScheduleDue: Comparable, Sendable {
    var time: Timestamp
    var name: String
    var revision: UInt64
    static func < (a: ScheduleDue, b: ScheduleDue) -> Bool { (a.time, a.name) < (b.time, b.name) }
}
