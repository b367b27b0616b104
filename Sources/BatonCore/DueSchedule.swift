import BatonProtocol

/// A schedule the leader has to act on, as `StateMachine.takeDueSchedules(at:)` hands it out.
public struct DueSchedule: Hashable, Sendable {
    public var name: String
    public var revision: UInt64
    public var spec: ScheduleSpec
    /// The slot to settle, or `.zero`: work out the first slot after `planFrom`.
    public var slot: Timestamp
    public var planFrom: Timestamp
}
