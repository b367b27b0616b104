import BatonProtocol

/// The calendar clock: UTC as this member's host reads it, for schedule slots, their catch-up window
/// and the fire-lag metric (PROTOCOL.md §4 and §8a). Unlike the cluster's clock (`ClusterClock`, for
/// leases, claims and waits: never ahead of real time, frozen while there is no leader) it counts
/// time without a leader, so after any outage slots fall on their UTC times again.
///
/// It never goes backwards: a host clock stepped back holds it where it was until the host clock
/// passes it again (slots wait, none fires twice: a fire is a compare-and-set), and a new leader
/// starts no earlier than the latest slot its log settled. A host clock stepped forward moves it
/// forward at once: the slots in between come due, early by at most the error the step corrected.
/// Between the host's readings (every tick) it advances with the monotonic clock.
struct CalendarClock: Sendable {
    /// The host's wall clock, read at monotonic reading `at`.
    private var reading: Timestamp
    private var at: UInt64
    /// What this clock last said, or the floor the log set: it never says less.
    private var floor = Timestamp.zero

    init(wall: Timestamp, at mono: UInt64) {
        reading = wall
        at = mono
    }

    /// The host's wall clock read `wall` at monotonic reading `mono`.
    mutating func read(wall: Timestamp, at mono: UInt64) {
        reading = wall
        at = mono
    }

    /// Never less than `time` from now on (the latest slot the log settled).
    mutating func raise(to time: Timestamp) { floor = max(floor, time) }

    /// The calendar's time at monotonic reading `mono`.
    mutating func now(at mono: UInt64) -> Timestamp {
        let elapsed = mono >= at ? mono - at : 0
        floor = max(floor, Timestamp(milliseconds: reading.milliseconds &+ elapsed))
        return floor
    }
}
