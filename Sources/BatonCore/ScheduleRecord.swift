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
