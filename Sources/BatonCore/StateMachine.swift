import BatonProtocol
import DequeModule
import HeapModule
import NIOCore

/// What the state machine is asked to apply. In a replicated cluster each input is one log entry.
public enum StateMachineInput: Hashable, Sendable {
    /// A client's command, with who sent it when its connection authenticated. Sequence number zero
    /// opts out of retry deduplication.
    case command(ClientID, SequenceNumber, Command, by: Principal? = nil)
    /// Only let time pass: fire every deadline up to the entry's time.
    case tick
    /// The client is gone (its last connection closed): drop its waiting acquires and claims.
    case detach(ClientID)
    /// The client gave up on one waiting acquire or claim (over HTTP/2: it reset the request's
    /// stream): that command stops waiting and is never answered. Nothing else changes; a command that
    /// no longer waits (granted, timed out) is not touched.
    case withdraw(ClientID, SequenceNumber)
    /// The leader's configured admin token (its hash): authentication is on from here, and the user
    /// `root` holds this token (see `AuthStore`). Applying the same hash again changes nothing.
    case bootstrapAuth(TokenHash)
    /// The leader's fires of schedule slots, applied in order (see `ScheduleFire`).
    case fireSchedules([ScheduleFire])
}

/// An answer to a command that waited: an acquire granted or timed out, a claim that found a job or did not.
public struct Completion: Hashable, Sendable {
    public var clientID: ClientID
    public var sequence: SequenceNumber
    public var reply: Reply
}

/// The result of applying one input.
public struct Applied: Hashable, Sendable {
    /// The answer to the input's own command, or nil when it waits (see `completions` of later inputs).
    public var reply: Reply?
    /// Answers to earlier waiting commands that this input (or the time it carries) settled.
    public var completions: [Completion]
    /// What became of schedule slots: fired, skipped, missed (for metrics).
    public var schedules: [ScheduleOutcome] = []
}

/// Baton's deterministic state machine: locks, jobs, leases and client sessions.
///
/// It is a pure value. It reads no clock: every input comes with the time at which it is applied, and
/// replicas that apply the same inputs with the same times reach the same state and give the same answers.
/// Time never runs backwards inside it: an input stamped earlier than the last is applied at the last time.
public struct StateMachine: Sendable {
    public let configuration: Configuration

    /// The time of the latest input applied.
    public internal(set) var now: Timestamp = .zero
    var lastToken: UInt64 = 0
    var lastJobID: UInt64 = 0
    var locks = ShardedTable<String, LockRecord>()
    var jobs = ShardedTable<JobID, JobRecord>()
    /// The keys of `locks` in order, for listings and snapshots (an index: not in a snapshot).
    var lockOrder = LockOrder()
    /// The ids of `jobs` in order, for listings and snapshots (an index: not in a snapshot).
    var jobOrder = JobOrder()
    var ready: [String: Heap<ReadyEntry>] = [:]
    var uniqueJobs: [UniqueJobKey: JobID] = [:]
    var runningByType: [String: Int] = [:]
    var claimWaiters: Deque<ClaimWaitEntry> = []
    var waits: [WaitKey: WaitPlace] = [:]
    var sessions: [ClientID: Session] = [:]
    /// Sessions per user that owns them (an index of `sessions`: not in a snapshot).
    var sessionsPerUser: [String: Int] = [:]
    var deadlines: Heap<Deadline> = []
    /// Completed jobs, oldest first; they are removed after the retention time or beyond the cap.
    var completed: Heap<CompletedEntry> = []
    var completedCount = 0
    /// Payload bytes of the jobs not completed, and payload and result bytes of the completed ones
    /// (the `maxJobBytes` quota).
    var unfinishedJobBytes = 0
    var completedJobBytes = 0
    /// Answers to waiting commands settled during the current input.
    var pendingCompletions: [Completion] = []
    /// Users, roles and token hashes.
    public internal(set) var auth = AuthStore()
    var schedules: [String: ScheduleRecord] = [:]
    var lastScheduleRevision: UInt64 = 0
    /// The schedules by the time the leader next acts on them (an index: not in a snapshot).
    var scheduleQueue: Heap<ScheduleDue> = []
    /// Overlap `bufferOne`: the schedule whose waiting slot each job's end lets fire (an index).
    var bufferedSlots: [JobID: String] = [:]
    /// Outcomes of slots during the current input.
    var scheduleOutcomes: [ScheduleOutcome] = []
    /// Scratch space for `CommandDigest`, empty between inputs: not state (never in a snapshot), kept
    /// only so a digest allocates nothing.
    var digestScratch = ByteBuffer()

    struct UniqueJobKey: Hashable, Sendable {
        var type: String
        var key: String
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The earliest time at which something will happen without any input (a lease ends, a wait runs
    /// out, a delayed job becomes ready). The runtime applies `.tick` then. May be early (a renewed lease
    /// leaves its old deadline behind), never late.
    public var nextDeadline: Timestamp? {
        let retention = completed.min.map { $0.completedAt.adding(configuration.completedRetention) }
        switch (deadlines.min?.time, retention) {
        case (let d?, let r?): return min(d, r)
        case (let d, let r): return d ?? r
        }
    }

    /// Applies one input at `time`.
    public mutating func apply(_ input: StateMachineInput, at time: Timestamp) -> Applied {
        advance(to: time)
        var reply: Reply?
        switch input {
        case .tick:
            reply = nil
        case .detach(let client):
            detach(client)
            reply = nil
        case .withdraw(let client, let sequence):
            let key = WaitKey(clientID: client, sequence: sequence)
            if let place = waits[key] { stopWaiting(key, at: place) }
            reply = nil
        case .command(let client, let sequence, let command, let principal):
            reply = applyCommand(client: client, sequence: sequence, command, by: principal)
        case .bootstrapAuth(let hash):
            bootstrapAuth(hash)
            reply = nil
        case .fireSchedules(let fires):
            fireSchedules(fires)
            reply = nil
        }
        let completions = pendingCompletions
        pendingCompletions.removeAll(keepingCapacity: true)
        var applied = Applied(reply: reply, completions: completions)
        if !scheduleOutcomes.isEmpty {
            applied.schedules = scheduleOutcomes
            scheduleOutcomes.removeAll()
        }
        return applied
    }

    /// Answers a read-only query from the current state, as seen at `time` (default: the last input's):
    /// a lease that has ended by then is shown as ended even before a `.tick` has been applied.
    /// With authentication on, `principal` must be allowed to read what `q` asks.
    public func query(_ q: Query, at time: Timestamp? = nil, by principal: Principal? = nil) -> Reply {
        let time = max(time ?? now, now)
        if auth.enabled, let refusal = auth.refusal(principal, needs(q)) { return unseen(q, refused: refusal) }
        if let error = validate(q) { return .error(error) }
        switch q {
        case .getLock(let key):
            return .lock(lockInfo(key, at: time))
        case .listLocks(let prefix, let after, let limit):
            return .locks(listLocks(prefix: prefix, after: after, limit: listLimit(limit), at: time))
        case .getJob(let id):
            guard let job = jobs[id] else { return noJob(id) }
            return .job(job.info)
        case .listJobs(let filter):
            return listJobs(filter)
        case .jobRunning(let type):
            return .jobRunning(count: UInt32(runningByType[type] ?? 0))
        case .listLeases(let limit):
            return .leases(leases(at: time, limit: listLimit(limit)))
        case .nodeStatus:
            return .error(.invalidArgument, "NODE_STATUS is answered by the node, not the state machine")
        case .listAuth:
            return .auth(auth.listing)
        case .getSchedule(let name):
            return .schedule(schedules[name]?.info)
        case .listSchedules(let after, let limit):
            return .schedules(listSchedules(after: after, limit: listLimit(limit)))
        }
    }

    /// The live leases that end soonest (at most `limit`), soonest first; ties by token, which no two
    /// leases share.
    func leases(at time: Timestamp, limit: Int) -> [LeaseInfo] {
        struct Soonest: Comparable {
            var expiresAt: Timestamp
            var token: FencingToken
            var lock: String?
            var job: JobID
            static func < (a: Soonest, b: Soonest) -> Bool { (a.expiresAt, a.token) < (b.expiresAt, b.token) }
            static func == (a: Soonest, b: Soonest) -> Bool { (a.expiresAt, a.token) == (b.expiresAt, b.token) }
        }
        var soonest = SmallestSelection<Soonest>(limit: limit)
        for (key, record) in locks {
            guard let h = record.holder, h.expiresAt > time else { continue }
            soonest.offer(Soonest(expiresAt: h.expiresAt, token: h.token, lock: key, job: JobID(0)))
        }
        for job in jobs.values where job.state == .running {
            soonest.offer(Soonest(expiresAt: job.leaseExpiresAt, token: job.claimToken, lock: nil, job: job.id))
        }
        return soonest.sorted.compactMap { s in
            if let key = s.lock {
                guard let h = locks[key]?.holder else { return nil }
                return LeaseInfo(kind: .lock, key: key, jobID: JobID(0), owner: h.owner, token: h.token, expiresAt: h.expiresAt)
            }
            guard let job = jobs[s.job] else { return nil }
            return LeaseInfo(
                kind: .job, key: job.spec.type, jobID: job.id, owner: job.worker, token: job.claimToken, expiresAt: job.leaseExpiresAt)
        }
    }

    /// Counts of what the state machine holds (for status and metrics).
    public func summary(at time: Timestamp? = nil) -> StateSummary {
        let time = max(time ?? now, now)
        var s = StateSummary()
        for record in locks.values {
            if let h = record.holder, h.expiresAt > time { s.locksHeld += 1 }
            s.lockWaiters += UInt32(record.waiters.count)
        }
        s.claimWaiters = UInt32(claimWaiters.count)
        for job in jobs.values {
            switch job.state {
            case .queued: s.jobsQueued += 1
            case .running: s.jobsRunning += 1
            case .completed: s.jobsCompleted += 1
            case .dead: s.jobsDead += 1
            }
        }
        s.sessions = UInt32(sessions.count)
        return s
    }

    /// Each quota's name (its configuration key), what is in use and the limit, for metrics.
    public var quotas: [(name: String, used: Int, limit: Int)] {
        [
            ("maxJobs", jobs.count - completedCount, configuration.maxJobs),
            ("maxJobBytes", unfinishedJobBytes + completedJobBytes, configuration.maxJobBytes),
            ("maxLocks", locks.count, configuration.maxLocks),
            ("maxClients", sessions.count, configuration.maxClients),
            ("maxSchedules", schedules.count, configuration.maxSchedules),
        ]
    }

    /// Jobs per (type, state), for metrics.
    public func jobCounts() -> [String: [JobState: Int]] {
        var counts: [String: [JobState: Int]] = [:]
        for job in jobs.values { counts[job.spec.type, default: [:]][job.state, default: 0] += 1 }
        return counts
    }

    func listLimit(_ asked: UInt16) -> Int {
        asked == 0 ? configuration.maxListLimit : min(Int(asked), configuration.maxListLimit)
    }

    // MARK: - Commands

    mutating func applyCommand(client: ClientID, sequence: SequenceNumber, _ command: Command, by principal: Principal? = nil) -> Reply? {
        // First, before a session is made or an answer recalled: who may not, learns nothing more.
        if auth.enabled, let refusal = auth.refusal(principal, needs(command)) {
            // Bounds first: a refusal names the key, and a 60 KB key must not reach the audit log.
            if let error = validate(command) { return .error(error) }
            return unseen(command, refused: refusal, by: principal)
        }
        var digest = CommandDigest.unknown
        if sequence.rawValue != 0 {
            digest = CommandDigest(command, using: &digestScratch)
            switch recall(client: client, sequence: sequence, digest: digest, by: auth.enabled ? principal : nil) {
            case .refused(let refusal): return .error(refusal)
            case .answered(let reply): return reply
            case .waiting: return nil
            case .tooOld:
                return .error(.sequenceTooOld, "sequence \(sequence) is older than the answers kept for client \(client)")
            case .reused:
                return .error(
                    .sequenceReused,
                    "sequence \(sequence) of client \(client) was used for a different request (\(command.opcode) or other fields); a changed request needs a new sequence number")
            case .new: break
            }
        }
        let reply: Reply?
        if let error = validate(command) {
            reply = .error(error)
        } else {
            reply = execute(command, client: client, sequence: sequence, digest: digest, by: principal)
        }
        if let reply, sequence.rawValue != 0 {
            remember(reply, digest: digest, client: client, sequence: sequence)
        }
        return reply
    }

    mutating func execute(
        _ command: Command, client: ClientID, sequence: SequenceNumber, digest: CommandDigest, by principal: Principal?
    ) -> Reply? {
        switch command {
        case .acquireLock(let key, let owner, let ttl, let wait):
            return acquireLock(
                key: key, owner: owner, ttl: ttl, wait: wait, client: client, sequence: sequence, digest: digest)
        case .renewLock(let key, let token, let ttl):
            return renewLock(key: key, token: token, ttl: ttl)
        case .releaseLock(let key, let token):
            return releaseLock(key: key, token: token)
        case .addJob(let spec):
            return addJob(spec)
        case .claimJob(let types, let worker, let wait):
            return claimJob(types: types, worker: worker, wait: wait, client: client, sequence: sequence, digest: digest)
        case .claimJobByID(let id, let worker):
            return claimJob(id: id, worker: worker)
        case .addJobs(let specs):
            return addJobs(specs)
        case .claimJobs(let types, let worker, let max):
            return claimJobs(types: types, worker: worker, max: max)
        case .completeJobs(let completions, let claimMax, let types, let worker):
            return completeJobs(completions, by: principal, thenClaim: claimMax, of: types, worker: worker)
        case .extendJob(let id, let token, let ttl):
            return extendJob(id, token: token, ttl: ttl)
        case .completeJob(let id, let token, let result):
            return completeJob(id, token: token, result: result)
        case .failJob(let id, let token, let error):
            return failJob(id, token: token, error: error)
        case .abortJob(let id, let token):
            return abortJob(id, token: token)
        case .deleteJob(let id):
            return deleteJob(id)
        case .requeueJob(let id):
            return requeueJob(id)
        case .forceReleaseLock(let key):
            guard let holder = locks[key]?.holder else { return .error(.lockNotHeld, "nobody holds lock '\(key)'") }
            passLock(key)
            return .lockForceReleased(token: holder.token)
        case .purgeJobs(let state, let olderThan):
            return purgeJobs(state: state, olderThan: olderThan)
        case .addUser, .deleteUser, .grantRole, .revokeRole, .addToken, .removeToken, .addRole, .deleteRole,
            .grantPermission, .revokePermission:
            let reply = executeAuthChange(command)
            if auth.enabled, command.mayRevoke { refuseRevokedWaits() }
            return reply
        case .putSchedule(let spec):
            return putSchedule(spec)
        case .deleteSchedule(let name):
            return deleteSchedule(name)
        case .pauseSchedule(let name):
            return setPaused(name, true)
        case .resumeSchedule(let name):
            return setPaused(name, false)
        case .triggerSchedule(let name):
            return triggerSchedule(name)
        }
    }

    // MARK: - Time

    mutating func schedule(_ kind: Deadline.Kind, at time: Timestamp) {
        deadlines.insert(Deadline(time: time, kind: kind))
        // Released locks and finished claims leave their deadlines behind. When those outnumber the
        // live ones, drop them, so the heap stays as small as the state it serves.
        if deadlines.count > 4096 && deadlines.count > 2 * (locks.count + waits.count + jobs.count + sessions.count) {
            deadlines = Heap(deadlines.unordered.filter(isLive))
        }
    }

    /// Whether a `.tick` at `time` would change anything: a lease, wait or retention ends by then.
    /// Drops stale deadlines on the way, which changes nothing observable.
    public mutating func hasDueWork(at time: Timestamp) -> Bool {
        while let first = deadlines.min, first.time <= time {
            if isLive(first) { return true }
            _ = deadlines.popMin()
        }
        pruneCompleted()
        if let oldest = completed.min, oldest.completedAt.adding(configuration.completedRetention) <= time { return true }
        return false
    }

    /// Whether firing `deadline` would still do something.
    func isLive(_ deadline: Deadline) -> Bool {
        switch deadline.kind {
        case .lockLease(let key, let token):
            guard let h = locks[key]?.holder else { return false }
            return h.token == token && h.expiresAt == deadline.time
        case .lockWait(let key, let client, let sequence):
            return waits[WaitKey(clientID: client, sequence: sequence)] == .lock(key)
        case .claimWait(let client, let sequence):
            return waits[WaitKey(clientID: client, sequence: sequence)] == .claim
        case .jobLease(let id, let token):
            guard let job = jobs[id] else { return false }
            return job.state == .running && job.claimToken == token && job.leaseExpiresAt == deadline.time
        case .jobReady(let id, let generation):
            guard let job = jobs[id] else { return false }
            return job.state == .queued && job.generation == generation
        case .session(let client):
            return sessions[client] != nil
        }
    }

    /// Fires every deadline up to `time`, in time order, each at its own time. Completed jobs whose
    /// retention ends at the same time as a deadline are removed first.
    mutating func advance(to time: Timestamp) {
        while true {
            pruneCompleted()
            let retentionEnd = completed.min.map { $0.completedAt.adding(configuration.completedRetention) }
            if let end = retentionEnd, end <= time, deadlines.min.map({ end <= $0.time }) ?? true {
                if end > now { now = end }
                dropOldestCompleted()
                continue
            }
            guard let first = deadlines.min, first.time <= time else { break }
            _ = deadlines.popMin()
            if first.time > now { now = first.time }
            fire(first.kind)
        }
        if time > now { now = time }
    }

    mutating func fire(_ kind: Deadline.Kind) {
        switch kind {
        case .lockLease(let key, let token):
            expireLock(key: key, token: token)
        case .lockWait(let key, let client, let sequence):
            expireLockWait(key: key, client: client, sequence: sequence)
        case .claimWait(let client, let sequence):
            expireClaimWait(client: client, sequence: sequence)
        case .jobLease(let id, let token):
            expireJobLease(id, token: token)
        case .jobReady(let id, let generation):
            jobBecameReady(id, generation: generation)
        case .session(let client):
            expireSession(client)
        }
    }

    mutating func nextToken() -> FencingToken {
        lastToken += 1
        return FencingToken(lastToken)
    }

    /// Settles a waiting command. Its answer is remembered at once, in the same step as it stops
    /// waiting: a retry of it applied in the same input (its wait ran out as time advanced to the
    /// retry's stamp) is then answered from memory, never run a second time.
    mutating func complete(_ client: ClientID, _ sequence: SequenceNumber, digest: CommandDigest, _ reply: Reply) {
        waits[WaitKey(clientID: client, sequence: sequence)] = nil
        remember(reply, digest: digest, client: client, sequence: sequence)
        pendingCompletions.append(Completion(clientID: client, sequence: sequence, reply: reply))
    }

    mutating func detach(_ client: ClientID) {
        for (key, place) in waits where key.clientID == client { stopWaiting(key, at: place) }
    }

    /// Takes one waiting command out of its line, unanswered.
    mutating func stopWaiting(_ key: WaitKey, at place: WaitPlace) {
        waits[key] = nil
        switch place {
        case .lock(let lockKey):
            locks[lockKey]?.waiters.removeAll { $0.clientID == key.clientID && $0.sequence == key.sequence }
            if let record = locks[lockKey], record.holder == nil, record.waiters.isEmpty { removeLock(lockKey) }
        case .claim:
            claimWaiters.removeAll { $0.clientID == key.clientID && $0.sequence == key.sequence }
        }
    }
}
