/// The newest protocol version this code speaks. HELLO carries it; see Protocol/PROTOCOL.md, "Versioning".
public let batonProtocolVersion: UInt16 = 5
/// Every protocol version this code speaks: a node answers HELLO with the newest of these that is not
/// above the client's, and a client accepts any of them.
public let batonProtocolVersions: ClosedRange<UInt16> = 2...batonProtocolVersion

// MARK: - Handshake

/// The first request on every connection.
public struct Hello: Hashable, Sendable {
    /// The newest protocol version the client speaks.
    public var version: UInt16
    public var clientID: ClientID
    public var clientName: String
    public init(version: UInt16 = batonProtocolVersion, clientID: ClientID, clientName: String) {
        self.version = version
        self.clientID = clientID
        self.clientName = clientName
    }
}

/// The node's answer to HELLO: who it is, its clock, and the limits it enforces.
public struct HelloReply: Hashable, Sendable {
    /// The protocol version both ends use on this connection from here on.
    public var version: UInt16
    public var nodeID: String
    public var serverTime: Timestamp
    public var maxFrameSize: UInt32
    public var maxKeyLength: UInt16
    public var minTTL: Milliseconds
    public var maxTTL: Milliseconds
    public var idleTimeout: Milliseconds
    public init(
        version: UInt16, nodeID: String, serverTime: Timestamp, maxFrameSize: UInt32, maxKeyLength: UInt16,
        minTTL: Milliseconds, maxTTL: Milliseconds, idleTimeout: Milliseconds
    ) {
        self.version = version
        self.nodeID = nodeID
        self.serverTime = serverTime
        self.maxFrameSize = maxFrameSize
        self.maxKeyLength = maxKeyLength
        self.minTTL = minTTL
        self.maxTTL = maxTTL
        self.idleTimeout = idleTimeout
    }
}

// MARK: - Commands (change state; carry a sequence number; go through the log)

/// A request that changes state. Each is applied once per (client id, sequence number).
public enum Command: Hashable, Sendable {
    /// Take the lock `key` for `ttl`; if it is held, wait in FIFO order up to `wait` (zero: try once).
    case acquireLock(key: String, owner: String, ttl: Milliseconds, wait: Milliseconds)
    /// Extend the lease of a held lock to `ttl` from now.
    case renewLock(key: String, token: FencingToken, ttl: Milliseconds)
    /// Give the lock up; the next waiter, if any, is granted it.
    case releaseLock(key: String, token: FencingToken)
    case addJob(JobSpec)
    /// Claim the next ready job of any of `types`, waiting up to `wait` for one.
    case claimJob(types: [String], worker: String, wait: Milliseconds)
    /// Claim one particular queued job now, even if its run-after time has not come.
    case claimJobByID(JobID, worker: String)
    /// Add every job or none (protocol 4): one command, one log entry, one answer per job in order.
    case addJobs([JobSpec])
    /// Claim up to `max` ready jobs of any of `types` at once (protocol 4). It never waits: with none
    /// ready it is answered with none, and a worker that wants to wait sends `claimJob` with a wait.
    case claimJobs(types: [String], worker: String, max: UInt16)
    /// Complete every claim of `completions` (each on its own: one lost claim does not hold back the
    /// others), then claim up to `claimMax` ready jobs of `types` (protocol 5): a worker's finished
    /// jobs and its next ones in one command and one log entry. It never waits.
    case completeJobs([JobCompletion], claimMax: UInt16, types: [String], worker: String)
    /// Extend a claim's lease to `ttl` from now (zero: the job's own timeout).
    case extendJob(JobID, token: FencingToken, ttl: Milliseconds)
    case completeJob(JobID, token: FencingToken, result: [UInt8])
    /// Record a failed attempt: retry after a backoff, or move the job to `dead` after its last attempt.
    case failJob(JobID, token: FencingToken, error: String)
    /// Give the job back to the queue without counting the attempt.
    case abortJob(JobID, token: FencingToken)
    case deleteJob(JobID)
    /// Move a dead job back to the queue with a fresh set of attempts.
    case requeueJob(JobID)
    /// Admin: end the lease on `key` whoever holds it (recorded in the log like any command).
    case forceReleaseLock(key: String)
    /// Admin: delete every job in `state` (completed or dead) that reached it at least `olderThan` ago.
    case purgeJobs(state: JobState, olderThan: Milliseconds)
    /// Admin: a user with no role and no token.
    case addUser(name: String)
    /// Admin: the user and its tokens are gone; its connections are refused from this entry on.
    case deleteUser(name: String)
    case grantRole(user: String, role: String)
    case revokeRole(user: String, role: String)
    /// Admin: one more bearer token for `user`, given by its hash; answered with the token's id.
    case addToken(user: String, hash: TokenHash)
    case removeToken(user: String, id: TokenID)
    /// Admin: a role with no permission.
    case addRole(name: String)
    /// Admin: the role is gone, and taken from every user that had it.
    case deleteRole(name: String)
    /// Admin: adds the permission's actions to the role's permission on the same resource and pattern.
    case grantPermission(role: String, Permission)
    /// Admin: takes the permission's actions from the role's permission on the same resource and pattern.
    case revokePermission(role: String, Permission)
    /// Creates the schedule, or replaces the one of the same name (the same spec again changes nothing).
    case putSchedule(ScheduleSpec)
    case deleteSchedule(name: String)
    case pauseSchedule(name: String)
    /// Resumes a paused schedule from its next slot after now.
    case resumeSchedule(name: String)
    /// Adds the schedule's job now, outside its slots and whatever its overlap policy.
    case triggerSchedule(name: String)
}

extension Command {
    /// An acquire or a claim with a non-zero wait: the answer may come long after the request.
    public var mayWait: Bool {
        switch self {
        case .acquireLock(_, _, _, let wait), .claimJob(_, _, let wait): wait != .zero
        default: false
        }
    }
}

/// What a job is to be: everything `addJob` carries.
public struct JobSpec: Hashable, Sendable {
    public var type: String
    public var payload: [UInt8]
    /// Higher runs first.
    public var priority: Int32
    /// The job becomes claimable this long after it is added.
    public var delay: Milliseconds
    /// Attempts before the job is dead. Zero: the default (5).
    public var maxAttempts: UInt16
    /// The lease of each claim. Zero: the default (60 s).
    public var timeout: Milliseconds
    /// The first retry's delay; each later one doubles it. Zero: the default (1 s).
    public var backoff: Milliseconds
    /// With a non-empty key, an add while a job of the same type and key is unfinished returns that job.
    public var uniqueKey: String

    public init(
        type: String, payload: [UInt8] = [], priority: Int32 = 0, delay: Milliseconds = .zero,
        maxAttempts: UInt16 = 0, timeout: Milliseconds = .zero, backoff: Milliseconds = .zero, uniqueKey: String = ""
    ) {
        self.type = type
        self.payload = payload
        self.priority = priority
        self.delay = delay
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.backoff = backoff
        self.uniqueKey = uniqueKey
    }
}

// MARK: - Queries (read state; no sequence number)

public enum Query: Hashable, Sendable {
    case getLock(key: String)
    /// Locks whose key starts with `prefix` and sorts after `after`, at most `limit` (zero: 1000).
    case listLocks(prefix: String, after: String, limit: UInt16)
    case getJob(JobID)
    case listJobs(JobFilter)
    /// How many jobs of `type` are running now.
    case jobRunning(type: String)
    /// Every live lease (held locks and running jobs), soonest to end first, at most `limit` (zero: 1000).
    case listLeases(limit: UInt16)
    /// The node's role, log position and what it holds.
    case nodeStatus
    /// Admin: every user and role.
    case listAuth
    case getSchedule(name: String)
    /// Schedules whose name sorts after `after`, by name, at most `limit` (zero: 1000).
    case listSchedules(after: String, limit: UInt16)
}

public struct JobFilter: Hashable, Sendable {
    /// Empty: every type.
    public var type: String
    /// Nil: every state.
    public var state: JobState?
    /// Only jobs with a larger id (paging cursor; zero to start).
    public var after: JobID
    /// Zero: 1000.
    public var limit: UInt16
    public init(type: String = "", state: JobState? = nil, after: JobID = JobID(0), limit: UInt16 = 0) {
        self.type = type
        self.state = state
        self.after = after
        self.limit = limit
    }
}

// MARK: - Domain values carried by replies

public enum JobState: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Waiting to be claimed (possibly not before its run-after time).
    case queued = 0
    /// Claimed; a worker holds a lease on it.
    case running = 1
    /// Completed by its worker; kept for a retention period so its result can be read.
    case completed = 2
    /// Failed its last attempt; kept until requeued or deleted.
    case dead = 3

    public var description: String {
        switch self {
        case .queued: "queued"
        case .running: "running"
        case .completed: "completed"
        case .dead: "dead"
        }
    }
}

public struct LockWaiter: Hashable, Sendable {
    public var owner: String
    public var clientID: ClientID
    public var deadline: Timestamp
    public init(owner: String, clientID: ClientID, deadline: Timestamp) {
        self.owner = owner
        self.clientID = clientID
        self.deadline = deadline
    }
}

/// A held lock as seen by `getLock` and `listLocks`.
public struct LockInfo: Hashable, Sendable {
    public var key: String
    public var owner: String
    public var clientID: ClientID
    public var token: FencingToken
    public var grantedAt: Timestamp
    public var expiresAt: Timestamp
    /// In the order they will be granted.
    public var waiters: [LockWaiter]
    public init(
        key: String, owner: String, clientID: ClientID, token: FencingToken, grantedAt: Timestamp,
        expiresAt: Timestamp, waiters: [LockWaiter]
    ) {
        self.key = key
        self.owner = owner
        self.clientID = clientID
        self.token = token
        self.grantedAt = grantedAt
        self.expiresAt = expiresAt
        self.waiters = waiters
    }
}

/// The outcome of an acquire: granted, or the lock stayed busy until the wait ran out.
///
/// `leaseLeft` is the time the lease had left when the node sent the answer. The node may have been
/// slow to answer (a failover, a retry answered from its memory, a long wait), so a client counts
/// it from when it sent the request that got the answer: the lease surely lasts until then.
public enum LockAcquisition: Hashable, Sendable {
    case granted(token: FencingToken, expiresAt: Timestamp, leaseLeft: Milliseconds)
    case busy(holder: String, expiresAt: Timestamp)
}

/// One job of a JOB_ADD_BATCH: its id, and whether the add created it (false: an unfinished job of
/// the same type and unique key existed, and this is its id).
public struct AddedJob: Hashable, Sendable {
    public var id: JobID
    public var created: Bool
    public init(id: JobID, created: Bool) {
        self.id = id
        self.created = created
    }
}

/// One completion of a JOB_COMPLETE_BATCH: the claim (job and token) and the job's result.
public struct JobCompletion: Hashable, Sendable {
    public var id: JobID
    public var token: FencingToken
    public var result: [UInt8]
    public init(id: JobID, token: FencingToken, result: [UInt8] = []) {
        self.id = id
        self.token = token
        self.result = result
    }
}

/// A job handed to a worker by a claim.
public struct ClaimedJob: Hashable, Sendable {
    public var id: JobID
    public var type: String
    public var payload: [UInt8]
    /// 1 for the first attempt.
    public var attempt: UInt16
    public var maxAttempts: UInt16
    public var token: FencingToken
    /// The length of each lease on this job: what an extend with ttl zero renews to.
    public var timeout: Milliseconds
    public var leaseExpiresAt: Timestamp
    /// The time the claim's lease had left when the node sent the answer; count it from when the
    /// claim was sent (see `LockAcquisition`).
    public var leaseLeft: Milliseconds
    public init(
        id: JobID, type: String, payload: [UInt8], attempt: UInt16, maxAttempts: UInt16, token: FencingToken,
        timeout: Milliseconds, leaseExpiresAt: Timestamp, leaseLeft: Milliseconds
    ) {
        self.id = id
        self.type = type
        self.payload = payload
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.token = token
        self.timeout = timeout
        self.leaseExpiresAt = leaseExpiresAt
        self.leaseLeft = leaseLeft
    }
}

/// A job as seen by `getJob` and `listJobs`.
public struct JobInfo: Hashable, Sendable {
    public var id: JobID
    public var type: String
    public var state: JobState
    public var priority: Int32
    public var attempts: UInt16
    public var maxAttempts: UInt16
    public var timeout: Milliseconds
    public var backoff: Milliseconds
    public var uniqueKey: String
    public var createdAt: Timestamp
    /// Queued: not claimable before this. Completed or dead: when that happened.
    public var runAt: Timestamp
    /// Running: when the current claim's lease ends. Otherwise zero.
    public var leaseExpiresAt: Timestamp
    /// Running: the worker holding the claim. Otherwise the last worker, or empty.
    public var worker: String
    public var lastError: String
    public var payload: [UInt8]
    public var result: [UInt8]
    public init(
        id: JobID, type: String, state: JobState, priority: Int32, attempts: UInt16, maxAttempts: UInt16,
        timeout: Milliseconds, backoff: Milliseconds, uniqueKey: String, createdAt: Timestamp, runAt: Timestamp,
        leaseExpiresAt: Timestamp, worker: String, lastError: String, payload: [UInt8], result: [UInt8]
    ) {
        self.id = id
        self.type = type
        self.state = state
        self.priority = priority
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.backoff = backoff
        self.uniqueKey = uniqueKey
        self.createdAt = createdAt
        self.runAt = runAt
        self.leaseExpiresAt = leaseExpiresAt
        self.worker = worker
        self.lastError = lastError
        self.payload = payload
        self.result = result
    }
}

/// A live lease: a held lock or a running job's claim.
public struct LeaseInfo: Hashable, Sendable {
    public enum Kind: UInt8, Hashable, Sendable { case lock = 0, job = 1 }
    public var kind: Kind
    /// The lock's key, or the job's type.
    public var key: String
    /// The job's id; zero for a lock.
    public var jobID: JobID
    public var owner: String
    public var token: FencingToken
    public var expiresAt: Timestamp
    public init(kind: Kind, key: String, jobID: JobID, owner: String, token: FencingToken, expiresAt: Timestamp) {
        self.kind = kind
        self.key = key
        self.jobID = jobID
        self.owner = owner
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// What the state machine holds, in numbers.
public struct StateSummary: Hashable, Sendable {
    public var locksHeld: UInt32 = 0
    public var lockWaiters: UInt32 = 0
    public var claimWaiters: UInt32 = 0
    public var jobsQueued: UInt32 = 0
    public var jobsRunning: UInt32 = 0
    public var jobsCompleted: UInt32 = 0
    public var jobsDead: UInt32 = 0
    public var sessions: UInt32 = 0
    public init() {}
}

/// One node as NODE_STATUS reports it.
public struct NodeStatus: Hashable, Sendable {
    public enum Role: UInt8, Hashable, Sendable, CustomStringConvertible {
        /// A single node: it is its own leader.
        case standalone = 0
        case leader = 1
        case follower = 2
        case candidate = 3
        public var description: String {
            switch self {
            case .standalone: "standalone"
            case .leader: "leader"
            case .follower: "follower"
            case .candidate: "candidate"
            }
        }
    }
    public var nodeID: String
    public var address: String
    public var role: Role
    public var term: UInt64
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var uptimeMilliseconds: UInt64
    public var serverTime: Timestamp
    public var connections: UInt32
    public var durable: Bool
    public var summary: StateSummary
    public init(
        nodeID: String, address: String, role: Role, term: UInt64, commitIndex: UInt64, appliedIndex: UInt64,
        uptimeMilliseconds: UInt64, serverTime: Timestamp, connections: UInt32, durable: Bool, summary: StateSummary
    ) {
        self.nodeID = nodeID
        self.address = address
        self.role = role
        self.term = term
        self.commitIndex = commitIndex
        self.appliedIndex = appliedIndex
        self.uptimeMilliseconds = uptimeMilliseconds
        self.serverTime = serverTime
        self.connections = connections
        self.durable = durable
        self.summary = summary
    }
}

// MARK: - Replies

/// Every answer a node gives. Each success case answers exactly one request opcode; `.error` answers any.
///
/// The cases with large payloads are `indirect`, so a `Reply` fits in 32 bytes: every node keeps the
/// last answers of each client (section 5 of PROTOCOL.md), and the lock and renew answers that fill
/// that window most need no box.
public enum Reply: Hashable, Sendable {
    indirect case hello(HelloReply)
    case pong(serverTime: Timestamp)
    case lockAcquired(LockAcquisition)
    /// `leaseLeft`: as in `LockAcquisition`.
    case lockRenewed(expiresAt: Timestamp, leaseLeft: Milliseconds)
    case lockReleased
    indirect case lock(LockInfo?)
    case locks([LockInfo])
    case jobAdded(JobID, created: Bool)
    /// Nil: no job became ready before the wait ran out.
    indirect case jobClaimed(ClaimedJob?)
    indirect case jobClaimedByID(ClaimedJob)
    /// JOB_ADD_BATCH: each job's id and whether it was created, in the request's order.
    case jobsAdded([AddedJob])
    /// JOB_CLAIM_BATCH: the jobs claimed, best first (empty: none was ready).
    case jobsClaimed([ClaimedJob])
    /// JOB_COMPLETE_BATCH: per completion in the request's order nil (completed) or why not
    /// (`jobNotFound`, `claimLost`, as JOB_COMPLETE answers), then the jobs claimed, best first.
    case jobsCompleted([ErrorCode?], claimed: [ClaimedJob])
    /// `leaseLeft`: as in `LockAcquisition`.
    case jobExtended(leaseExpiresAt: Timestamp, leaseLeft: Milliseconds)
    case jobCompleted
    /// The job's state after the failure (`queued` for a retry at `retryAt`, or `dead`).
    case jobFailed(state: JobState, retryAt: Timestamp)
    case jobAborted
    indirect case job(JobInfo)
    /// `next` is the cursor for the following page, or zero when there is none.
    case jobs([JobInfo], next: JobID)
    case jobDeleted
    case jobRequeued
    case jobRunning(count: UInt32)
    /// The token whose lease was ended.
    case lockForceReleased(token: FencingToken)
    case jobsPurged(count: UInt32)
    case leases([LeaseInfo])
    indirect case status(NodeStatus)
    /// AUTH accepted the token: the user it belongs to.
    case authenticated(user: String)
    /// A user or role change (the request's opcode) was applied.
    case authUpdated(Opcode)
    case tokenAdded(TokenID)
    indirect case auth(AuthListing)
    /// SCHEDULE_PUT: whether the schedule is new.
    case schedulePut(created: Bool)
    /// SCHEDULE_DELETE, SCHEDULE_PAUSE or SCHEDULE_RESUME done (the request's opcode).
    case scheduleUpdated(Opcode)
    /// SCHEDULE_TRIGGER: the job added.
    case scheduleTriggered(JobID)
    indirect case schedule(ScheduleInfo?)
    /// A page of schedules by name; the next page starts after the last one's name.
    case schedules([ScheduleInfo])
    indirect case error(ErrorReply)

    public static func error(_ code: ErrorCode, _ message: String) -> Reply { .error(ErrorReply(code, message)) }

    /// This answer as the node sends it at `now` (its time, which never runs ahead of the cluster's):
    /// each lease it grants says how long it has left at that moment. The state machine's answer
    /// (or its memory of one, for a retry) is recounted on every send.
    public func sent(at now: @autoclosure () -> Timestamp) -> Reply {
        switch self {
        case .lockAcquired(.granted(let token, let expiresAt, _)):
            return .lockAcquired(.granted(token: token, expiresAt: expiresAt, leaseLeft: .left(until: expiresAt, at: now())))
        case .lockRenewed(let expiresAt, _):
            return .lockRenewed(expiresAt: expiresAt, leaseLeft: .left(until: expiresAt, at: now()))
        case .jobExtended(let expiresAt, _):
            return .jobExtended(leaseExpiresAt: expiresAt, leaseLeft: .left(until: expiresAt, at: now()))
        case .jobClaimed(var job?):
            job.leaseLeft = .left(until: job.leaseExpiresAt, at: now())
            return .jobClaimed(job)
        case .jobClaimedByID(var job):
            job.leaseLeft = .left(until: job.leaseExpiresAt, at: now())
            return .jobClaimedByID(job)
        case .jobsClaimed(var jobs):
            let at = now()
            for i in jobs.indices { jobs[i].leaseLeft = .left(until: jobs[i].leaseExpiresAt, at: at) }
            return .jobsClaimed(jobs)
        case .jobsCompleted(let outcomes, var jobs) where !jobs.isEmpty:
            let at = now()
            for i in jobs.indices { jobs[i].leaseLeft = .left(until: jobs[i].leaseExpiresAt, at: at) }
            return .jobsCompleted(outcomes, claimed: jobs)
        default:
            return self
        }
    }
}

/// A client-to-node message.
public enum Request: Hashable, Sendable {
    case hello(Hello)
    case ping
    /// Proves who the client is with a bearer token, for the rest of the connection.
    case auth(token: String)
    case command(SequenceNumber, Command)
    case query(Query)
}
