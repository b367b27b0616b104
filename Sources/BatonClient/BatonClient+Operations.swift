import BatonProtocol

// One call per protocol operation. Each maps to one request of Protocol/PROTOCOL.md.
extension BatonClient {
    // MARK: Locks

    /// Takes the lock `key` for `ttl`. If it is held, waits in FIFO order up to `wait` (zero: try once).
    /// `owner` names the holder in listings; it defaults to the client's name.
    /// A grant's `leaseLeft` counts from when the request was sent; `withLock` does that counting.
    public func acquireLock(
        _ key: String, ttl: Duration, wait: Duration = .zero, owner: String? = nil
    ) async throws -> LockAcquisition {
        try await acquireLockCounted(key, ttl: ttl, wait: wait, owner: owner).acquisition
    }

    /// `acquireLock`, and until when a grant's lease surely lasts on this machine's clock.
    func acquireLockCounted(
        _ key: String, ttl: Duration, wait: Duration, owner: String?
    ) async throws -> (acquisition: LockAcquisition, validUntil: ContinuousClock.Instant) {
        let (reply, sent) = try await commandCounted(
            .acquireLock(key: key, owner: owner ?? configuration.name, ttl: Milliseconds(ttl), wait: Milliseconds(wait)),
            extraTimeout: wait)
        guard case .lockAcquired(let a) = reply else { throw unexpected("LOCK_ACQUIRE") }
        guard case .granted(_, _, let left) = a else { return (a, sent) }
        return (a, ClientLease.validUntil(sent: sent, leaseLeft: left))
    }

    /// Extends a held lock's lease to `ttl` from now; returns the new expiry (node time) and the
    /// time the lease had left when the node answered. Throws `.server(STALE_TOKEN)` when `token`
    /// no longer holds the lock.
    @discardableResult
    public func renewLock(_ key: String, token: FencingToken, ttl: Duration) async throws -> LeaseRenewal {
        try await renewLockCounted(key, token: token, ttl: ttl).renewal
    }

    /// `renewLock`, and until when the lease surely lasts on this machine's clock.
    func renewLockCounted(
        _ key: String, token: FencingToken, ttl: Duration
    ) async throws -> (renewal: LeaseRenewal, validUntil: ContinuousClock.Instant) {
        let (reply, sent) = try await commandCounted(.renewLock(key: key, token: token, ttl: Milliseconds(ttl)))
        guard case .lockRenewed(let t, let left) = reply else { throw unexpected("LOCK_RENEW") }
        return (LeaseRenewal(expiresAt: t, leaseLeft: left), ClientLease.validUntil(sent: sent, leaseLeft: left))
    }

    public func releaseLock(_ key: String, token: FencingToken) async throws {
        guard case .lockReleased = try await command(.releaseLock(key: key, token: token)) else {
            throw unexpected("LOCK_RELEASE")
        }
    }

    /// The lock's holder and waiters, or nil when nobody holds it.
    public func getLock(_ key: String) async throws -> LockInfo? {
        guard case .lock(let info) = try await call(.query(.getLock(key: key))) else { throw unexpected("LOCK_GET") }
        return info
    }

    /// Held locks whose key starts with `prefix`, in key order, after `after`, at most `limit` (zero: 1000).
    public func listLocks(prefix: String = "", after: String = "", limit: UInt16 = 0) async throws -> [LockInfo] {
        guard case .locks(let infos) = try await call(.query(.listLocks(prefix: prefix, after: after, limit: limit)))
        else { throw unexpected("LOCK_LIST") }
        return infos
    }

    // MARK: Jobs

    /// Adds a job. Returns its id, and whether it was created (false: an unfinished job with the same
    /// type and unique key already existed, and that job's id is returned).
    @discardableResult
    public func addJob(_ spec: JobSpec) async throws -> (id: JobID, created: Bool) {
        guard case .jobAdded(let id, let created) = try await command(.addJob(spec)) else { throw unexpected("JOB_ADD") }
        return (id, created)
    }

    /// Adds every job of `specs` in one request and one log entry, or none of them (JOB_ADD_BATCH):
    /// an invalid job, or a batch the quotas cannot take whole, is refused as a whole. Returns each
    /// job's id and whether it was created, in order. At most 1,000 jobs (`limits` of the node), and
    /// the request must fit in one frame. A node of an older build, or a cluster in the middle of an
    /// upgrade, refuses it with `UNKNOWN_OPCODE`; send the jobs with `addJob` then (one by one, so
    /// not all or nothing).
    @discardableResult
    public func addJobs(_ specs: [JobSpec]) async throws -> [AddedJob] {
        guard case .jobsAdded(let added) = try await command(.addJobs(specs)), added.count == specs.count else {
            throw unexpected("JOB_ADD_BATCH")
        }
        return added
    }

    /// Claims up to `max` ready jobs of any of `types` in one request (JOB_CLAIM_BATCH), best first;
    /// empty when none is ready (it never waits: `claimJob(types:wait:)` does). Each job is a claim of
    /// its own, with its own token and lease.
    public func claimJobs(types: [String], max: Int, worker: String? = nil) async throws -> [ClaimedJob] {
        try await claimJobsCounted(types: types, max: max, worker: worker).jobs
    }

    /// `claimJobs`, and until when the claims' leases surely last on this machine's clock.
    func claimJobsCounted(
        types: [String], max: Int, worker: String?
    ) async throws -> (jobs: [ClaimedJob], validUntil: [ContinuousClock.Instant]) {
        let (reply, sent) = try await commandCounted(
            .claimJobs(types: types, worker: worker ?? configuration.name, max: UInt16(clamping: max)))
        guard case .jobsClaimed(let jobs) = reply else { throw unexpected("JOB_CLAIM_BATCH") }
        return (jobs, jobs.map { ClientLease.validUntil(sent: sent, leaseLeft: $0.leaseLeft) })
    }

    /// Completes each of `completions` on its own, then claims up to `claimMax` ready jobs of `types`,
    /// in one request and one log entry (JOB_COMPLETE_BATCH; it never waits). Returns per completion,
    /// in order, nil (completed) or the code JOB_COMPLETE would have answered (`.claimLost`,
    /// `.jobNotFound`, `.permissionDenied`), and the jobs claimed, best first. A node of an older
    /// build, or a cluster in the middle of an upgrade, refuses it with `UNKNOWN_OPCODE`.
    public func completeJobs(
        _ completions: [JobCompletion], thenClaim claimMax: Int = 0, types: [String] = [], worker: String? = nil
    ) async throws -> (outcomes: [ErrorCode?], claimed: [ClaimedJob]) {
        let done = try await completeJobsCounted(completions, thenClaim: claimMax, types: types, worker: worker)
        return (done.outcomes, done.claimed)
    }

    /// `completeJobs`, and until when the new claims' leases surely last on this machine's clock.
    func completeJobsCounted(
        _ completions: [JobCompletion], thenClaim claimMax: Int, types: [String], worker: String?
    ) async throws -> (outcomes: [ErrorCode?], claimed: [ClaimedJob], validUntil: [ContinuousClock.Instant]) {
        let (reply, sent) = try await commandCounted(
            .completeJobs(completions, claimMax: UInt16(clamping: claimMax), types: types, worker: worker ?? configuration.name))
        guard case .jobsCompleted(let outcomes, let jobs) = reply, outcomes.count == completions.count else {
            throw unexpected("JOB_COMPLETE_BATCH")
        }
        return (outcomes, jobs, jobs.map { ClientLease.validUntil(sent: sent, leaseLeft: $0.leaseLeft) })
    }

    /// Claims the next ready job of any of `types`, waiting up to `wait` for one; nil when none came.
    /// A claim's `leaseLeft` counts from when the request was sent; `JobWorker` does that counting.
    public func claimJob(types: [String], worker: String? = nil, wait: Duration = .zero) async throws -> ClaimedJob? {
        try await claimJobCounted(types: types, worker: worker, wait: wait).job
    }

    /// `claimJob`, and until when a claim's lease surely lasts on this machine's clock.
    func claimJobCounted(
        types: [String], worker: String?, wait: Duration
    ) async throws -> (job: ClaimedJob?, validUntil: ContinuousClock.Instant) {
        let (reply, sent) = try await commandCounted(
            .claimJob(types: types, worker: worker ?? configuration.name, wait: Milliseconds(wait)), extraTimeout: wait)
        guard case .jobClaimed(let job) = reply else { throw unexpected("JOB_CLAIM") }
        return (job, ClientLease.validUntil(sent: sent, leaseLeft: job?.leaseLeft ?? .zero))
    }

    /// Claims one queued job by id, now ("start job by id").
    public func claimJob(id: JobID, worker: String? = nil) async throws -> ClaimedJob {
        guard case .jobClaimedByID(let job) = try await command(.claimJobByID(id, worker: worker ?? configuration.name))
        else { throw unexpected("JOB_CLAIM_ID") }
        return job
    }

    /// Extends a claim's lease to `ttl` from now (nil: the job's own timeout). Returns the new expiry
    /// and the time the lease had left when the node answered.
    @discardableResult
    public func extendJob(_ id: JobID, token: FencingToken, ttl: Duration? = nil) async throws -> LeaseRenewal {
        try await extendJobCounted(id, token: token, ttl: ttl).renewal
    }

    /// `extendJob`, and until when the claim's lease surely lasts on this machine's clock.
    func extendJobCounted(
        _ id: JobID, token: FencingToken, ttl: Duration?
    ) async throws -> (renewal: LeaseRenewal, validUntil: ContinuousClock.Instant) {
        let (reply, sent) = try await commandCounted(.extendJob(id, token: token, ttl: ttl.map { Milliseconds($0) } ?? .zero))
        guard case .jobExtended(let t, let left) = reply else { throw unexpected("JOB_EXTEND") }
        return (LeaseRenewal(expiresAt: t, leaseLeft: left), ClientLease.validUntil(sent: sent, leaseLeft: left))
    }

    public func completeJob(_ id: JobID, token: FencingToken, result: [UInt8] = []) async throws {
        guard case .jobCompleted = try await command(.completeJob(id, token: token, result: result)) else {
            throw unexpected("JOB_COMPLETE")
        }
    }

    /// Records a failed attempt. Returns the job's new state: `.queued` (retry at `retryAt`) or `.dead`.
    @discardableResult
    public func failJob(_ id: JobID, token: FencingToken, error: String) async throws -> (state: JobState, retryAt: Timestamp) {
        guard case .jobFailed(let state, let at) = try await command(.failJob(id, token: token, error: error)) else {
            throw unexpected("JOB_FAIL")
        }
        return (state, at)
    }

    /// Gives the job back to the queue without counting the attempt.
    public func abortJob(_ id: JobID, token: FencingToken) async throws {
        guard case .jobAborted = try await command(.abortJob(id, token: token)) else { throw unexpected("JOB_ABORT") }
    }

    public func getJob(_ id: JobID) async throws -> JobInfo {
        guard case .job(let info) = try await call(.query(.getJob(id))) else { throw unexpected("JOB_GET") }
        return info
    }

    /// One page of jobs in id order; pass the returned `next` as `filter.after` for the following page.
    public func listJobs(_ filter: JobFilter = JobFilter()) async throws -> (jobs: [JobInfo], next: JobID) {
        guard case .jobs(let infos, let next) = try await call(.query(.listJobs(filter))) else {
            throw unexpected("JOB_LIST")
        }
        return (infos, next)
    }

    public func deleteJob(_ id: JobID) async throws {
        guard case .jobDeleted = try await command(.deleteJob(id)) else { throw unexpected("JOB_DELETE") }
    }

    /// Moves a dead job back to the queue with a fresh set of attempts.
    public func requeueJob(_ id: JobID) async throws {
        guard case .jobRequeued = try await command(.requeueJob(id)) else { throw unexpected("JOB_REQUEUE") }
    }

    // MARK: Admin

    /// Ends the lease on `key` whoever holds it; returns the token that held it. The next waiter, if
    /// any, is granted the lock. Throws `.server(LOCK_NOT_HELD)` when nobody holds it.
    @discardableResult
    public func forceReleaseLock(_ key: String) async throws -> FencingToken {
        guard case .lockForceReleased(let token) = try await command(.forceReleaseLock(key: key)) else {
            throw unexpected("LOCK_FORCE_RELEASE")
        }
        return token
    }

    /// Deletes the jobs in `state` (completed or dead) that reached it at least `olderThan` ago.
    public func purgeJobs(state: JobState, olderThan: Duration) async throws -> Int {
        guard case .jobsPurged(let n) = try await command(.purgeJobs(state: state, olderThan: Milliseconds(olderThan))) else {
            throw unexpected("JOB_PURGE")
        }
        return Int(n)
    }

    /// Every live lease (held locks, running jobs), soonest to end first.
    public func listLeases(limit: UInt16 = 0) async throws -> [LeaseInfo] {
        guard case .leases(let leases) = try await call(.query(.listLeases(limit: limit))) else {
            throw unexpected("LEASE_LIST")
        }
        return leases
    }

    /// The status of the node this client is connected to.
    public func nodeStatus() async throws -> NodeStatus {
        guard case .status(let s) = try await call(.query(.nodeStatus)) else { throw unexpected("NODE_STATUS") }
        return s
    }

    /// How many jobs of `type` are running now.
    public func runningJobs(type: String) async throws -> Int {
        guard case .jobRunning(let n) = try await call(.query(.jobRunning(type: type))) else {
            throw unexpected("JOB_RUNNING")
        }
        return Int(n)
    }
}
