import BatonProtocol
import HeapModule

extension StateMachine {
    mutating func addJob(_ asked: JobSpec) -> Reply {
        var spec = asked
        if spec.maxAttempts == 0 { spec.maxAttempts = configuration.defaultMaxAttempts }
        if spec.timeout == .zero { spec.timeout = configuration.defaultJobTimeout }
        if spec.backoff == .zero { spec.backoff = configuration.defaultBackoff }
        let unique = UniqueJobKey(type: spec.type, key: spec.uniqueKey)
        if !spec.uniqueKey.isEmpty, let existing = uniqueJobs[unique] {
            return .jobAdded(existing, created: false)
        }
        if let refusal = makeRoom(forJobs: 1, ofBytes: spec.payload.count) { return .error(refusal) }
        unfinishedJobBytes += spec.payload.count
        lastJobID += 1
        let id = JobID(lastJobID)
        jobs[id] = JobRecord(id: id, spec: spec, state: .queued, attempts: 0, createdAt: now, runAt: now.adding(spec.delay))
        jobOrder.append(id)
        if !spec.uniqueKey.isEmpty { uniqueJobs[unique] = id }
        enqueue(id)
        return .jobAdded(id, created: true)
    }

    /// JOB_ADD_BATCH: every job, or none when the quotas cannot take them all (each job was checked
    /// by `validate` before). A unique key already held, or held by an earlier job of the batch,
    /// answers with that job's id, as one JOB_ADD after another would.
    mutating func addJobs(_ specs: [JobSpec]) -> Reply {
        var newJobs = 0
        var newBytes = 0
        var keys = Set<UniqueJobKey>()
        for spec in specs {
            if !spec.uniqueKey.isEmpty {
                let unique = UniqueJobKey(type: spec.type, key: spec.uniqueKey)
                if uniqueJobs[unique] != nil || !keys.insert(unique).inserted { continue }
            }
            newJobs += 1
            newBytes += spec.payload.count
        }
        if let refusal = makeRoom(forJobs: newJobs, ofBytes: newBytes) {
            return .error(refusal.code, refusal.message + "; no job was added")
        }
        var added: [AddedJob] = []
        added.reserveCapacity(specs.count)
        for spec in specs {
            guard case .jobAdded(let id, let created) = addJob(spec) else {
                preconditionFailure("an add that the batch's quota check let through was refused")
            }
            added.append(AddedJob(id: id, created: created))
        }
        return .jobsAdded(added)
    }

    /// Checks the job quotas for an add of `count` jobs holding `bytes` of payload (one JOB_ADD, or
    /// the new jobs of a JOB_ADD_BATCH), removing completed jobs (oldest first) when that makes room;
    /// the refusal when nothing does.
    mutating func makeRoom(forJobs count: Int, ofBytes bytes: Int) -> ErrorReply? {
        let unfinished = jobs.count - completedCount
        if unfinished + count > configuration.maxJobs {
            return ErrorReply(
                .quotaExceeded,
                count == 1
                    ? "\(unfinished) unfinished jobs are held, the most allowed (limits.maxJobs)"
                    : "\(unfinished) unfinished jobs are held; \(count) more would pass limits.maxJobs (\(configuration.maxJobs))")
        }
        if unfinishedJobBytes + bytes > configuration.maxJobBytes {
            return ErrorReply(
                .quotaExceeded,
                "unfinished jobs hold \(unfinishedJobBytes) bytes; \(bytes) more would pass limits.maxJobBytes (\(configuration.maxJobBytes))")
        }
        dropCompleted(toFit: bytes)
        return nil
    }

    /// Removes completed jobs, oldest first, until `bytes` more fit under `maxJobBytes`.
    mutating func dropCompleted(toFit bytes: Int) {
        while unfinishedJobBytes + completedJobBytes + bytes > configuration.maxJobBytes && completedCount > 0 {
            dropOldestCompleted()
        }
    }

    /// Puts a queued job in its type's ready queue (or sets a timer for its run-after time) and hands
    /// ready jobs to waiting claims.
    mutating func enqueue(_ id: JobID) {
        guard var job = jobs[id] else { return }
        job.generation &+= 1
        jobs[id] = job
        if job.runAt > now {
            schedule(.jobReady(id, generation: job.generation), at: job.runAt)
            return
        }
        ready[job.spec.type, default: Heap()].insert(
            ReadyEntry(priority: job.spec.priority, runAt: job.runAt, id: id, generation: job.generation))
        serveClaimWaiters(type: job.spec.type)
    }

    mutating func jobBecameReady(_ id: JobID, generation: UInt32) {
        guard let job = jobs[id], job.state == .queued, job.generation == generation else { return }
        ready[job.spec.type, default: Heap()].insert(
            ReadyEntry(priority: job.spec.priority, runAt: job.runAt, id: id, generation: generation))
        serveClaimWaiters(type: job.spec.type)
    }

    mutating func serveClaimWaiters(type: String) {
        while let index = claimWaiters.firstIndex(where: { $0.types.contains(type) }) {
            let waiter = claimWaiters[index]
            guard let id = popReady(types: waiter.types) else { return }
            claimWaiters.remove(at: index)
            let claimed = startClaim(id, worker: waiter.worker)
            complete(waiter.clientID, waiter.sequence, digest: waiter.digest, .jobClaimed(claimed))
        }
    }

    /// Removes and returns the best ready job among `types`, dropping stale queue entries on the way.
    mutating func popReady(types: [String]) -> JobID? {
        var best: (type: String, entry: ReadyEntry)?
        for type in types {
            guard var heap = ready[type] else { continue }
            ready[type] = nil  // take the heap out so it is mutated in place
            while let top = heap.min {
                if let job = jobs[top.id], job.state == .queued, job.generation == top.generation { break }
                _ = heap.popMin()
            }
            if let top = heap.min, best == nil || top < best!.entry { best = (type, top) }
            if !heap.isEmpty { ready[type] = heap }
        }
        guard let best else { return nil }
        _ = ready[best.type]!.popMin()
        if ready[best.type]!.isEmpty { ready[best.type] = nil }
        return best.entry.id
    }

    /// Moves a queued job to running under a new claim token.
    mutating func startClaim(_ id: JobID, worker: String) -> ClaimedJob {
        var job = jobs[id]!
        job.state = .running
        job.attempts += 1
        job.claimToken = nextToken()
        job.leaseExpiresAt = now.adding(job.spec.timeout)
        job.worker = worker
        job.generation &+= 1
        jobs[id] = job
        runningByType[job.spec.type, default: 0] += 1
        schedule(.jobLease(id, token: job.claimToken), at: job.leaseExpiresAt)
        return job.claimed(at: now)
    }

    mutating func claimJob(
        types: [String], worker: String, wait: Milliseconds, client: ClientID, sequence: SequenceNumber,
        digest: CommandDigest
    ) -> Reply? {
        if let id = popReady(types: types) {
            return .jobClaimed(startClaim(id, worker: worker))
        }
        if wait == .zero || sequence.rawValue == 0 { return .jobClaimed(nil) }
        let deadline = now.adding(wait)
        claimWaiters.append(
            ClaimWaitEntry(
                clientID: client, sequence: sequence, types: types, worker: worker, deadline: deadline, digest: digest))
        waits[WaitKey(clientID: client, sequence: sequence)] = .claim
        schedule(.claimWait(clientID: client, sequence: sequence), at: deadline)
        return nil
    }

    /// JOB_CLAIM_BATCH: up to `max` ready jobs of `types`, best first, each under a claim of its own;
    /// none when none is ready (it never waits).
    mutating func claimJobs(types: [String], worker: String, max: UInt16) -> Reply {
        var claimed: [ClaimedJob] = []
        while claimed.count < Int(max), let id = popReady(types: types) {
            claimed.append(startClaim(id, worker: worker))
        }
        return .jobsClaimed(claimed)
    }

    mutating func expireClaimWait(client: ClientID, sequence: SequenceNumber) {
        guard let index = claimWaiters.firstIndex(where: { $0.clientID == client && $0.sequence == sequence }) else {
            return
        }
        let waiter = claimWaiters.remove(at: index)
        complete(client, sequence, digest: waiter.digest, .jobClaimed(nil))
    }

    mutating func claimJob(id: JobID, worker: String) -> Reply {
        guard let job = jobs[id] else { return noJob(id) }
        guard job.state == .queued else {
            return .error(.invalidState, "job \(id) is \(job.state), only a queued job can be claimed")
        }
        return .jobClaimedByID(startClaim(id, worker: worker))
    }

    /// The job, if `token` is its current claim; otherwise the error to answer with.
    func runningJob(_ id: JobID, token: FencingToken) -> Result<JobRecord, ErrorReply> {
        guard let job = jobs[id] else { return .failure(ErrorReply(.jobNotFound, Self.noJobMessage(id))) }
        guard job.state == .running, job.claimToken == token else {
            return .failure(ErrorReply(.claimLost, "claim \(token) on job \(id) expired or was superseded"))
        }
        return .success(job)
    }

    mutating func extendJob(_ id: JobID, token: FencingToken, ttl: Milliseconds) -> Reply {
        switch runningJob(id, token: token) {
        case .failure(let e): return .error(e)
        case .success(var job):
            let expiresAt = now.adding(ttl == .zero ? job.spec.timeout : ttl)
            if expiresAt > job.leaseExpiresAt {
                job.leaseExpiresAt = expiresAt
                jobs[id] = job
                schedule(.jobLease(id, token: token), at: expiresAt)
            }
            return .jobExtended(leaseExpiresAt: job.leaseExpiresAt, leaseLeft: .left(until: job.leaseExpiresAt, at: now))
        }
    }

    mutating func completeJob(_ id: JobID, token: FencingToken, result: [UInt8]) -> Reply {
        switch runningJob(id, token: token) {
        case .failure(let e): return .error(e)
        case .success(var job):
            stopRunning(&job)
            job.state = .completed
            job.runAt = now
            job.result = result
            jobs[id] = job
            releaseUniqueKey(job)
            unfinishedJobBytes -= job.spec.payload.count
            completed.insert(CompletedEntry(completedAt: now, id: id))
            completedCount += 1
            completedJobBytes += job.bytes
            while completedCount > configuration.maxCompletedJobs { dropOldestCompleted() }
            dropCompleted(toFit: 0)
            jobEnded(id)
            return .jobCompleted
        }
    }

    /// JOB_COMPLETE_BATCH: each completion as JOB_COMPLETE would answer it on its own (one the
    /// principal may not make answers as JOB_COMPLETE's refusal would), then up to `claimMax` jobs
    /// claimed as JOB_CLAIM_BATCH claims them.
    mutating func completeJobs(
        _ completions: [JobCompletion], by principal: Principal?, thenClaim claimMax: UInt16, of types: [String], worker: String
    ) -> Reply {
        var outcomes: [ErrorCode?] = []
        outcomes.reserveCapacity(completions.count)
        for c in completions {
            if auth.enabled {
                let one = Command.completeJob(c.id, token: c.token, result: c.result)
                if let refusal = auth.refusal(principal, needs(one)), case .error(let e) = unseen(one, refused: refusal, by: principal) {
                    outcomes.append(e.code)
                    continue
                }
            }
            switch completeJob(c.id, token: c.token, result: c.result) {
            case .error(let e): outcomes.append(e.code)
            default: outcomes.append(nil)
            }
        }
        guard claimMax > 0, case .jobsClaimed(let claimed) = claimJobs(types: types, worker: worker, max: claimMax) else {
            return .jobsCompleted(outcomes, claimed: [])
        }
        return .jobsCompleted(outcomes, claimed: claimed)
    }

    mutating func failJob(_ id: JobID, token: FencingToken, error: String) -> Reply {
        switch runningJob(id, token: token) {
        case .failure(let e): return .error(e)
        case .success(var job):
            stopRunning(&job)
            job.lastError = error.truncated(toUTF8Bytes: configuration.maxErrorLength)
            retryOrBury(&job)
            return .jobFailed(state: job.state, retryAt: job.state == .queued ? job.runAt : .zero)
        }
    }

    mutating func abortJob(_ id: JobID, token: FencingToken) -> Reply {
        switch runningJob(id, token: token) {
        case .failure(let e): return .error(e)
        case .success(var job):
            stopRunning(&job)
            job.attempts -= 1
            job.state = .queued
            job.runAt = now
            jobs[id] = job
            enqueue(id)
            return .jobAborted
        }
    }

    mutating func expireJobLease(_ id: JobID, token: FencingToken) {
        guard var job = jobs[id], job.state == .running, job.claimToken == token, job.leaseExpiresAt <= now else {
            return
        }
        stopRunning(&job)
        job.lastError = "lease expired (worker \(job.worker))"
        retryOrBury(&job)
    }

    /// After a failed attempt: queue the job again after its backoff, or mark it dead after its last attempt.
    mutating func retryOrBury(_ job: inout JobRecord) {
        if job.attempts >= job.spec.maxAttempts {
            job.state = .dead
            job.runAt = now
            jobs[job.id] = job
            releaseUniqueKey(job)
            jobEnded(job.id)
        } else {
            job.state = .queued
            job.runAt = now.adding(retryDelay(job))
            jobs[job.id] = job
            enqueue(job.id)
        }
    }

    /// `backoff × 2^(attempts-1)`, capped, plus up to 25 % jitter derived from the job id and attempt,
    /// so that every replica computes the same delay and retries of many jobs do not line up.
    func retryDelay(_ job: JobRecord) -> Milliseconds {
        let shift = UInt64(min(Int(job.attempts) - 1, 32))
        let base = min(UInt64(job.spec.backoff.rawValue) << shift, UInt64(configuration.maxBackoff.rawValue))
        var h = job.id.rawValue &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(job.attempts) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        let jitter = base * (h % 1000) / 4000
        return Milliseconds(UInt32(min(base + jitter, UInt64(UInt32.max))))
    }

    mutating func stopRunning(_ job: inout JobRecord) {
        job.leaseExpiresAt = .zero
        job.claimToken = FencingToken(0)
        if let n = runningByType[job.spec.type] {
            runningByType[job.spec.type] = n > 1 ? n - 1 : nil
        }
    }

    mutating func releaseUniqueKey(_ job: JobRecord) {
        guard !job.spec.uniqueKey.isEmpty else { return }
        let key = UniqueJobKey(type: job.spec.type, key: job.spec.uniqueKey)
        if uniqueJobs[key] == job.id { uniqueJobs[key] = nil }
    }

    mutating func deleteJob(_ id: JobID) -> Reply {
        guard var job = jobs[id] else { return noJob(id) }
        if job.state == .running { stopRunning(&job) }
        if job.state == .completed {
            completedCount -= 1
            completedJobBytes -= job.bytes
        } else {
            unfinishedJobBytes -= job.bytes
        }
        releaseUniqueKey(job)
        jobs[id] = nil
        if jobOrder.remove() { jobOrder.compact { [jobs] in jobs[$0] != nil } }
        jobEnded(id)
        return .jobDeleted
    }

    mutating func requeueJob(_ id: JobID) -> Reply {
        guard var job = jobs[id] else { return noJob(id) }
        guard job.state == .dead else {
            return .error(.invalidState, "job \(id) is \(job.state), only a dead job can be requeued")
        }
        if !job.spec.uniqueKey.isEmpty {
            let key = UniqueJobKey(type: job.spec.type, key: job.spec.uniqueKey)
            if let other = uniqueJobs[key] {
                return .error(.invalidState, "job \(other) with the same unique key is already unfinished")
            }
            uniqueJobs[key] = id
        }
        job.state = .queued
        job.attempts = 0
        job.runAt = now
        jobs[id] = job
        enqueue(id)
        return .jobRequeued
    }

    /// Removes the completed job that finished first.
    mutating func dropOldestCompleted() {
        pruneCompleted()
        guard let entry = completed.popMin(), let job = jobs.removeValue(forKey: entry.id) else { return }
        if jobOrder.remove() { jobOrder.compact { [jobs] in jobs[$0] != nil } }
        completedCount -= 1
        completedJobBytes -= job.bytes
    }

    /// Pops entries of jobs deleted since they completed, so the oldest entry is a completed job.
    mutating func pruneCompleted() {
        while let entry = completed.min {
            if let job = jobs[entry.id], job.state == .completed, job.runAt == entry.completedAt { return }
            _ = completed.popMin()
        }
    }

    mutating func purgeJobs(state: JobState, olderThan: Milliseconds) -> Reply {
        guard state == .completed || state == .dead else {
            return .error(.invalidArgument, "only completed or dead jobs can be purged, not \(state)")
        }
        let doomed = jobs.values.filter { $0.state == state && $0.runAt.adding(olderThan) <= now }.map(\.id).sorted()
        for id in doomed { _ = deleteJob(id) }
        return .jobsPurged(count: UInt32(doomed.count))
    }

    func listJobs(_ filter: JobFilter) -> Reply {
        let limit = listLimit(filter.limit)
        // In id order from the cursor on, one more than a page: whether another page follows.
        var page: [JobInfo] = []
        var more = false
        jobOrder.forEach(after: filter.after) { id in
            guard let job = jobs[id] else { return true }  // removed since
            if let state = filter.state, job.state != state { return true }
            if !filter.type.isEmpty && job.spec.type != filter.type { return true }
            if page.count == limit {
                more = true
                return false
            }
            page.append(job.info)
            return true
        }
        return .jobs(page, next: more ? page.last?.id ?? JobID(0) : JobID(0))
    }
}

extension StateMachine {
    /// The answer about a job id that names no job (or none the asker may see: `unseen`).
    func noJob(_ id: JobID) -> Reply { .error(.jobNotFound, Self.noJobMessage(id)) }

    static func noJobMessage(_ id: JobID) -> String { "no job \(id)" }
}
