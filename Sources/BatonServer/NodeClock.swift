import BatonProtocol
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's time: the wall clock read once at start-up, advanced by the monotonic clock from then on.
/// A wall-clock jump while the node runs (NTP stepping, an operator) moves no lease.
struct NodeClock: Sendable {
    private let startWall: UInt64
    private let startMono: UInt64

    init() {
        startWall = Self.read(CLOCK_REALTIME)
        startMono = Self.read(CLOCK_MONOTONIC)
    }

    func now() -> Timestamp {
        Timestamp(milliseconds: startWall + (Self.read(CLOCK_MONOTONIC) - startMono))
    }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
