import BatonProtocol
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's time: a starting point, advanced by the monotonic clock from then on. A wall-clock jump
/// while the node runs (NTP stepping, an operator) moves no lease.
///
/// A new node starts from the wall clock. A node restarted from disk starts from the time of the last
/// input it applied: time stands still while the node is down, so a lease has after a restart the time
/// it had left when the node last wrote (never less), and downtime gives no lease a free renewal.
struct NodeClock: Sendable {
    private let start: UInt64
    private let startMono: UInt64

    /// Starts at `resume`, or at the wall clock when `resume` is zero (a node with no past).
    init(resumingFrom resume: Timestamp = .zero) {
        start = resume == .zero ? Self.read(CLOCK_REALTIME) : resume.milliseconds
        startMono = Self.read(CLOCK_MONOTONIC)
    }

    func now() -> Timestamp {
        Timestamp(milliseconds: start + (Self.read(CLOCK_MONOTONIC) - startMono))
    }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
