import BatonProtocol

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
