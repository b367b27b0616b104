import BatonProtocol

/// Everything the state machine knows about one schedule.
struct ScheduleRecord: Hashable, Sendable {
    var spec: ScheduleSpec
    /// Unique among all the schedules the state machine has held; a new one on each change of the
    /// spec, pause and resume. A fire entry names the revision it was worked out for, so one made
    /// before a change does nothing after it.
    var revision: UInt64
    var createdAt: Timestamp
    /// The first slot is the first one strictly after this time (when the schedule was created,
    /// changed or resumed).
    var planFrom: Timestamp
    /// The next slot to settle; `.zero` until the leader has worked out the first, `.never` when none comes.
    var nextSlot: Timestamp = .zero
    var lastSlot: Timestamp = .zero
    var lastFireAt: Timestamp = .zero
    var lastJob = JobID(0)
    /// Overlap `bufferOne`: the slot that waits for `lastJob` to end (zero: none).
    var buffered: Timestamp = .zero
    var fires: UInt64 = 0
    var skips: UInt64 = 0
    var misses: UInt64 = 0

    var info: ScheduleInfo {
        ScheduleInfo(
            spec: spec, nextSlot: nextSlot, lastSlot: lastSlot, lastFireAt: lastFireAt, lastJob: lastJob, fires: fires,
            skips: skips, misses: misses, createdAt: createdAt)
    }

    /// When the leader has something to do for it: work out its first slot, or settle its next.
    var dueAt: Timestamp? {
        if spec.paused || nextSlot == .never { return nil }
        return nextSlot == .zero ? planFrom : nextSlot
    }
}

/// A schedule's place in the queue of the slots to come: an index the leader reads, not state.
struct ScheduleDue: Comparable, Sendable {
    var time: Timestamp
    var name: String
    var revision: UInt64
    static func < (a: ScheduleDue, b: ScheduleDue) -> Bool { (a.time, a.name) < (b.time, b.name) }
}

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

/// A schedule the leader has to act on, as `StateMachine.takeDueSchedules(at:)` hands it out.
public struct DueSchedule: Hashable, Sendable {
    public var name: String
    public var revision: UInt64
    public var spec: ScheduleSpec
    /// The slot to settle, or `.zero`: work out the first slot after `planFrom`.
    public var slot: Timestamp
    public var planFrom: Timestamp
}

/// What applying a fire entry (or the end of a job a slot waited for) did to one slot, for metrics.
public struct ScheduleOutcome: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// The slot added this job.
        case fired(JobID)
        /// The overlap policy skipped the slot (or the job quota refused its job).
        case skipped
        /// The slot waits for the previous job to end (overlap `bufferOne`).
        case buffered
        /// This many slots were older than the catch-up window.
        case missed(UInt32)
    }
    public var name: String
    public var slot: Timestamp
    public var kind: Kind
}
