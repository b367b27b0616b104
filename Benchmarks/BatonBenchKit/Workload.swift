/// What each benchmark cycle does. Every target runs the same cycle in its own protocol.
public enum Workload: String, CaseIterable, Sendable, Codable {
    /// Acquire a random key out of `keys`, then release it. A busy key is retried with another.
    case lock
    /// Every client on one key: acquire (waiting in line where the target can), then release.
    case lockContended = "lock-contended"
    /// Add a job, claim a job, complete it.
    case job
    /// Each in-flight slot holds its own lock and renews it, cycle after cycle.
    case renew
}

/// One request of a cycle, in target-neutral terms.
public enum Step: Sendable, Equatable {
    case acquire(key: String, wait: Bool)
    case release(key: String, token: UInt64)
    case renew(key: String, token: UInt64)
    case add
    case claim
    case complete(id: UInt64, token: UInt64)
}

/// What a reply said, in target-neutral terms.
public enum Outcome: Sendable, Equatable {
    case granted(token: UInt64)
    case busy
    case done
    case job(id: UInt64, token: UInt64)
    case empty
    case failed(String)
    /// A cluster member that does not lead (Baton's NOT_LEADER), naming the leader when it knows it.
    case redirect(leader: String?)
}

/// The progress of one in-flight cycle: the step sent last, and what it needs next.
public struct Cycle: Sendable {
    public var workload: Workload
    public var key: String
    public var step: Step
    public var requests: UInt64 = 1
    /// For `renew`: the slot's lock, once taken.
    public var held: UInt64?

    /// What to send after `outcome`, or nil when the cycle has ended. `missed` is set when the
    /// attempt found a busy lock or no job (the cycle starts over).
    public mutating func next(after outcome: Outcome) -> (step: Step?, missed: Bool) {
        switch (step, outcome) {
        case (.acquire, .granted(let token)):
            if workload == .renew {
                held = token
                return (nil, false)
            }
            step = .release(key: key, token: token)
        case (.acquire, .busy):
            return (nil, true)
        case (.release, .done), (.renew, .done), (.complete, .done):
            return (nil, false)
        case (.add, .done):
            step = .claim
        case (.claim, .job(let id, let token)):
            step = .complete(id: id, token: token)
        case (.claim, .empty):
            return (nil, true)
        default:
            return (nil, true)
        }
        requests += 1
        return (step, false)
    }
}
