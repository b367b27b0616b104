import BatonProtocol

/// The leader's word on one slot of one schedule, carried in a log entry (`StateMachineInput.fireSchedules`).
/// Replicas apply it as it says and never work out a slot themselves: members whose builds or clocks
/// differ cannot disagree about when a schedule fires.
///
/// It is a compare-and-set: it does something only while the schedule is at `revision` and its next
/// slot is `slot`. So a second fire of a slot (a retried proposal, two leaders, a replayed log) and a
/// fire worked out before the schedule changed do nothing.
public struct ScheduleFire: Hashable, Sendable {
    public var name: String
    public var revision: UInt64
    /// The slot settled: the schedule's next slot as the leader read it. `.zero`: the schedule has no
    /// next slot yet, and this entry only sets it to `next`.
    public var slot: Timestamp
    /// Zero: `slot` fires. Otherwise `slot` and the `missed - 1` slots after it are counted missed.
    public var missed: UInt32
    /// The slot after those settled (`.never`: none).
    public var next: Timestamp

    public init(name: String, revision: UInt64, slot: Timestamp, missed: UInt32 = 0, next: Timestamp) {
        self.name = name
        self.revision = revision
        self.slot = slot
        self.missed = missed
        self.next = next
    }
}
