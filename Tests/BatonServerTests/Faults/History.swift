import BatonProtocol

/// A recorded history of a workload against a cluster: every operation with the time its request
/// was sent (invoke) and its answer arrived (complete), on the test machine's monotonic clock in
/// microseconds, and its outcome. The checkers read it; nothing in it is judged as it is recorded.
struct History: Sendable {
    struct Operation: Sendable {
        /// The workload client that ran it (one BatonClient, one session).
        var process: Int
        var call: Call
        /// Microseconds on the monotonic clock.
        var invoke: Int64
        /// Nil while unanswered; an `.unknown` outcome keeps the time it was given up on.
        var complete: Int64?
        var outcome: Outcome
    }

    enum Call: Sendable, Equatable {
        case acquire(key: String, ttl: Milliseconds, wait: Milliseconds)
        case renew(key: String, token: FencingToken, ttl: Milliseconds)
        case release(key: String, token: FencingToken)
        case addJob(type: String, uniqueKey: String)
        case claim(type: String)
        case extend(JobID, token: FencingToken)
        case complete(JobID, token: FencingToken)
        case fail(JobID, token: FencingToken)
        /// LOCK_GET, asked of one member and never redirected.
        case read(key: String)
        /// A write to the fenced resource with the writer's token; `paused` after its holder was
        /// stopped past its lease.
        case write(key: String, token: FencingToken, paused: Bool)
    }

    enum Outcome: Sendable, Equatable {
        /// A lock granted or renewed, or a job claimed or extended: the lease the answer told of.
        case lease(token: FencingToken, expiresAt: Timestamp, left: Milliseconds, job: JobID?)
        /// An acquire that stayed busy, a claim that found nothing.
        case none
        case added(JobID)
        /// A read's answer: the token of the lock's holder, or nil when it was free.
        case read(FencingToken?)
        /// A release, complete or fail that was carried out.
        case done
        /// Refused: the operation surely did not take effect (STALE_TOKEN, CLAIM_LOST, …).
        case refused(String)
        /// No answer: it may or may not have taken effect.
        case unknown
    }

    var operations: [Operation] = []
}

extension History.Operation {
    /// The node's time when it sent this answer, for a lease answer: `expires_at − lease_left`.
    var clusterTimeAtAnswer: UInt64? {
        guard case .lease(_, let expiresAt, let left, _) = outcome, left.rawValue > 0 else { return nil }
        return expiresAt.milliseconds - UInt64(left.rawValue)
    }

    /// Until when the lease this answer told of surely lasts, as its holder counts it: `lease_left`
    /// from the send of the request (microseconds).
    var countedEnd: Int64? {
        guard case .lease(_, _, let left, _) = outcome else { return nil }
        return invoke + Int64(left.rawValue) * 1000
    }

    var token: FencingToken? {
        guard case .lease(let token, _, _, _) = outcome else { return nil }
        return token
    }
}
