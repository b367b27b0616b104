/// The pacing of the patterns built on the client (a job worker, a periodic task), with no I/O:
/// the rules the Swift client and the Python client's `baton.pacing` share (both replay
/// `Clients/testdata/pacing.trace`).
public enum Pacing {
    /// After a claim failed (no connection, a refusal other than an older node's UNKNOWN_OPCODE),
    /// a worker waits this long before it claims again.
    public static let afterFailedClaim = Duration.milliseconds(500)

    /// After a periodic task lost its lock, or could not take it for another reason than its being
    /// busy, it waits this long before it queues for it again.
    public static let afterLostLock = Duration.milliseconds(500)

    /// How long from wall time `now` (milliseconds since the Unix epoch) until the next slot of a
    /// task run every `every`, slots being the wall clock's multiples of it (at least 1 ms); at a
    /// slot's very instant, a whole period.
    public static func untilNextSlot(every: Duration, wallMilliseconds now: Int64) -> Duration {
        let (seconds, attoseconds) = every.components
        let period = max(seconds * 1000 + attoseconds / 1_000_000_000_000_000, 1)
        return .milliseconds(period - (now % period + period) % period)
    }
}
