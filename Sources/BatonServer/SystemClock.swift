#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BatonProtocol

/// The clocks a node reads: the monotonic clock, which times everything (leases, timers, the
/// cluster's time), and the wall clock, read once, when a new cluster's first leader starts the
/// cluster's time. A wall-clock jump while the node runs (NTP stepping, an operator) moves no lease.
enum SystemClock {
    /// The monotonic clock, in milliseconds.
    static func monotonic() -> UInt64 { read(CLOCK_MONOTONIC) }

    /// The wall clock.
    static func wall() -> Timestamp { Timestamp(milliseconds: read(CLOCK_REALTIME)) }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
