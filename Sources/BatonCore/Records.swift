import BatonProtocol
import DequeModule

/// The lease on a held lock.
struct LockHolder: Hashable, Sendable {
    var owner: String
    var clientID: ClientID
    var token: FencingToken
    var grantedAt: Timestamp
    var expiresAt: Timestamp
}

/// An acquire waiting in a lock's FIFO queue.
struct LockWaitEntry: Hashable, Sendable {
    var owner: String
    var clientID: ClientID
    var sequence: SequenceNumber
    var ttl: Milliseconds
    var deadline: Timestamp
    /// The waiting acquire's digest (`unknown` when restored from a version-1 snapshot).
    var digest: CommandDigest
}

/// A lock key with a holder, waiters, or both. A key with neither is removed.
struct LockRecord: Hashable, Sendable {
    var holder: LockHolder?
    var waiters: [LockWaitEntry] = []
}

/// A claim waiting for a job of one of its types.
struct ClaimWaitEntry: Hashable, Sendable {
    var clientID: ClientID
    var sequence: SequenceNumber
    var types: [String]
    var worker: String
    var deadline: Timestamp
    /// The waiting claim's digest (`unknown` when restored from a version-1 snapshot).
    var digest: CommandDigest
}

/// Everything the state machine knows about one job.
struct JobRecord: Hashable, Sendable {
    var id: JobID
    var spec: JobSpec
    var state: JobState
    var attempts: UInt16
    var createdAt: Timestamp
    /// Queued: claimable from then on. Completed or dead: when that happened.
    var runAt: Timestamp
    var leaseExpiresAt: Timestamp = .zero
    var claimToken: FencingToken = FencingToken(0)
    var worker: String = ""
    var lastError: String = ""
    var result: [UInt8] = []
    /// Bumped every time the job is queued; an entry in a ready queue or timer with an older value is stale.
    var generation: UInt32 = 0

    /// What the job counts towards `maxJobBytes`: its payload, and its result once it has one.
    var bytes: Int { spec.payload.count + result.count }

    var info: JobInfo {
        JobInfo(
            id: id, type: spec.type, state: state, priority: spec.priority, attempts: attempts,
            maxAttempts: spec.maxAttempts, timeout: spec.timeout, backoff: spec.backoff, uniqueKey: spec.uniqueKey,
            createdAt: createdAt, runAt: runAt, leaseExpiresAt: state == .running ? leaseExpiresAt : .zero,
            worker: worker, lastError: lastError, payload: spec.payload, result: result)
    }

    /// The claim as its answer at `now` hands it out.
    func claimed(at now: Timestamp) -> ClaimedJob {
        ClaimedJob(
            id: id, type: spec.type, payload: spec.payload, attempt: attempts, maxAttempts: spec.maxAttempts,
            token: claimToken, timeout: spec.timeout, leaseExpiresAt: leaseExpiresAt,
            leaseLeft: .left(until: leaseExpiresAt, at: now))
    }
}

/// A queued job in its type's ready queue: highest priority first, then earliest run-after time, then oldest.
struct ReadyEntry: Comparable, Sendable {
    var priority: Int32
    var runAt: Timestamp
    var id: JobID
    var generation: UInt32

    static func < (a: Self, b: Self) -> Bool {
        if a.priority != b.priority { return a.priority > b.priority }
        if a.runAt != b.runAt { return a.runAt < b.runAt }
        return a.id < b.id
    }
}

/// Something that must happen at a time. Timers are never removed early: when one fires, it is checked
/// against the current state and ignored if the state moved on (a renewed lease, a finished job).
///
/// Deadlines are ordered by time, then by a fixed order of their kinds and fields, never by when they were
/// set: a replica restored from a snapshot fires them in the same order as one that never restarted.
struct Deadline: Comparable, Sendable {
    enum Kind: Hashable, Sendable {
        case lockLease(key: String, token: FencingToken)
        case lockWait(key: String, clientID: ClientID, sequence: SequenceNumber)
        case claimWait(clientID: ClientID, sequence: SequenceNumber)
        case jobLease(JobID, token: FencingToken)
        case jobReady(JobID, generation: UInt32)
        case session(ClientID)

        /// Rank, then up to two numbers and a string that order deadlines of the same rank.
        var sortKey: (Int, UInt64, UInt64, String) {
            switch self {
            case .lockLease(let key, let token): (0, token.rawValue, 0, key)
            case .lockWait(let key, let c, let s): (1, c.rawValue, s.rawValue, key)
            case .claimWait(let c, let s): (2, c.rawValue, s.rawValue, "")
            case .jobLease(let id, let token): (3, id.rawValue, token.rawValue, "")
            case .jobReady(let id, let g): (4, id.rawValue, UInt64(g), "")
            case .session(let c): (5, c.rawValue, 0, "")
            }
        }
    }

    var time: Timestamp
    var kind: Kind

    static func < (a: Self, b: Self) -> Bool {
        a.time != b.time ? a.time < b.time : a.kind.sortKey < b.kind.sortKey
    }
    static func == (a: Self, b: Self) -> Bool { a.time == b.time && a.kind == b.kind }
}

/// A completed job, in the order completed jobs are removed: oldest completion first, then lowest id.
struct CompletedEntry: Comparable, Sendable {
    var completedAt: Timestamp
    var id: JobID
    static func < (a: Self, b: Self) -> Bool {
        a.completedAt != b.completedAt ? a.completedAt < b.completedAt : a.id < b.id
    }
}

/// The answers remembered for one client, so a retried command is answered, not applied again.
struct Session: Sendable {
    /// Answers in the order they were given, oldest first, each with its command's digest (`unknown`
    /// when restored from a version-1 snapshot). Searched only for a retry (a sequence number not above
    /// `highestSeen`), so the common path is an append and no lookup.
    var replies: Deque<RememberedReply> = []
    /// The highest sequence number this client has sent.
    var highestSeen = SequenceNumber(0)
    /// The highest sequence number whose answer was forgotten.
    var forgottenUpTo = SequenceNumber(0)
    var lastSeen: Timestamp
    /// With authentication on, who sent the session's latest command: the session belongs to that
    /// principal's user, and a command of another user under its client id is refused. Nil: made
    /// while authentication was off (the first authenticated command takes it).
    var principal: Principal?

    func reply(to sequence: SequenceNumber) -> RememberedReply? {
        replies.last { $0.sequence == sequence }
    }

    /// Keeps `reply` as the answer to `sequence`, forgetting the oldest answers beyond `window`.
    /// One mutation of the session, so the caller's dictionary is looked up once.
    mutating func remember(_ reply: Reply, digest: CommandDigest, sequence: SequenceNumber, window: Int) {
        replies.append(RememberedReply(sequence: sequence, digest: digest, reply: reply))
        while replies.count > window {
            let old = replies.removeFirst().sequence
            if old > forgottenUpTo { forgottenUpTo = old }
        }
    }
}

/// An answer a session keeps for retries of its command.
struct RememberedReply: Sendable {
    var sequence: SequenceNumber
    /// The command's digest; `unknown` when restored from a version-1 snapshot (any retry then gets the reply).
    var digest: CommandDigest
    var reply: Reply
}

/// Where a pending (waiting) command waits.
enum WaitPlace: Hashable, Sendable {
    case lock(String)
    case claim
}

/// A command that may wait (an acquire or a claim), by its client and sequence number.
public struct WaitKey: Hashable, Sendable {
    public var clientID: ClientID
    public var sequence: SequenceNumber

    public init(clientID: ClientID, sequence: SequenceNumber) {
        self.clientID = clientID
        self.sequence = sequence
    }
}
