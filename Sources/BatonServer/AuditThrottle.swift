import BatonProtocol

/// Keeps the audit log readable under a flood of refusals. A worker deployed with a wrong token, or
/// a role that lacks a permission, retries for as long as it runs: at hundreds of requests a second
/// the log would hold nothing else (and fill its disk). Refusals are grouped by their kind (the
/// error code), user and host; the first of a group is logged, then at most one line per
/// `interval`, which says how many like it were left out since the last. Every refusal is still
/// counted in `baton_auth_failures_total`. Time comes in as an argument (monotonic nanoseconds),
/// so the rule is tested without a clock.
struct AuditThrottle {
    enum Verdict: Equatable {
        /// Log this refusal, saying that `suppressed` like it were left out before it.
        case log(suppressed: Int)
        /// Leave it out (it is counted for the next line of its group).
        case suppress
    }

    let intervalNanoseconds: UInt64
    /// Most groups remembered; past it the groups whose interval is over are forgotten, and if none
    /// is, a refusal of a new group is logged without being remembered.
    let capacity: Int
    private var groups: [String: (since: UInt64, suppressed: Int)] = [:]

    init(intervalNanoseconds: UInt64 = 10_000_000_000, capacity: Int = 10_000) {
        self.intervalNanoseconds = intervalNanoseconds
        self.capacity = capacity
    }

    mutating func admit(_ group: String, now: UInt64) -> Verdict {
        if let last = groups[group] {
            if now &- last.since < intervalNanoseconds {
                groups[group]!.suppressed += 1
                return .suppress
            }
            groups[group] = (now, 0)
            return .log(suppressed: last.suppressed)
        }
        if groups.count >= capacity {
            groups = groups.filter { now &- $0.value.since < intervalNanoseconds }
            if groups.count >= capacity { return .log(suppressed: 0) }
        }
        groups[group] = (now, 0)
        return .log(suppressed: 0)
    }

    /// The group of a refusal: its kind (the error code, not the message: refusals that differ only
    /// in a client-chosen key must not each get a line), the user (or "-") and the peer's host
    /// without its port (a retrying client comes back from a new port each time).
    static func group(_ code: ErrorCode, user: String?, peer: String) -> String {
        let host = peer.lastIndex(of: ":").map { String(peer[..<$0]) } ?? peer
        return "\(code)|\(user ?? "-")|\(host)"
    }
}
