import BatonProtocol

extension StateMachine {
    enum Recall {
        case new
        case answered(Reply)
        case waiting
        case tooOld
        /// The sequence number was answered, or waits, for a different command (another digest).
        case reused
        /// The session is another user's, or a new one would break a quota.
        case refused(ErrorReply)
    }

    /// What the state machine already knows about (client, sequence), for a command with `digest`.
    /// With authentication on, `principal` must own the session (or may make a new one): see
    /// `sessionRefusal` and `newSessionRefusal`; checked first, so another user learns nothing more.
    mutating func recall(client: ClientID, sequence: SequenceNumber, digest: CommandDigest, by principal: Principal? = nil) -> Recall {
        guard let index = sessions.index(forKey: client) else {
            if let refusal = newSessionRefusal(principal) { return .refused(refusal) }
            var session = Session(lastSeen: now)
            session.highestSeen = sequence
            session.principal = principal
            sessions[client] = session
            if let user = principal?.user { sessionsPerUser[user, default: 0] += 1 }
            schedule(.session(client), at: now.adding(configuration.sessionTimeout))
            return .new
        }
        if let principal, let refusal = sessionRefusal(sessions.values[index], client, principal) { return .refused(refusal) }
        // Mutated in place through the index: one hash lookup per command.
        sessions.values[index].lastSeen = now
        if let principal, sessions.values[index].principal != principal {
            if sessions.values[index].principal == nil { sessionsPerUser[principal.user, default: 0] += 1 }
            sessions.values[index].principal = principal
        }
        if sequence > sessions.values[index].highestSeen {
            sessions.values[index].highestSeen = sequence
            return .new
        }
        let session = sessions.values[index]
        if let remembered = session.reply(to: sequence) {
            return remembered.digest.admits(digest) ? .answered(remembered.reply) : .reused
        }
        let key = WaitKey(clientID: client, sequence: sequence)
        if let place = waits[key] {
            return (waitingDigest(key, at: place) ?? .unknown).admits(digest) ? .waiting : .reused
        }
        if sequence <= session.forgottenUpTo { return .tooOld }
        return .new
    }

    /// The digest of the command waiting under `key` at `place`.
    func waitingDigest(_ key: WaitKey, at place: WaitPlace) -> CommandDigest? {
        switch place {
        case .lock(let lockKey):
            locks[lockKey]?.waiters.first { $0.clientID == key.clientID && $0.sequence == key.sequence }?.digest
        case .claim:
            claimWaiters.first { $0.clientID == key.clientID && $0.sequence == key.sequence }?.digest
        }
    }

    /// Keeps `reply` as the answer to (client, sequence), forgetting the oldest answer beyond the window.
    mutating func remember(_ reply: Reply, digest: CommandDigest, client: ClientID, sequence: SequenceNumber) {
        guard sequence.rawValue != 0, let index = sessions.index(forKey: client) else { return }
        sessions.values[index].remember(reply, digest: digest, sequence: sequence, window: configuration.sessionWindow)
    }

    /// Whether `client` has a command waiting. Linear in the waits: asked only when a client that
    /// sent no waiting command to this leader goes away.
    public func hasWaits(of client: ClientID) -> Bool {
        !waits.isEmpty && waits.keys.contains { $0.clientID == client }
    }

    /// The clients with a command waiting (an acquire in line, a claim with a wait).
    public var waitingClients: Set<ClientID> { Set(waits.keys.lazy.map(\.clientID)) }

    mutating func expireSession(_ client: ClientID) {
        guard let session = sessions[client] else { return }
        let end = session.lastSeen.adding(configuration.sessionTimeout)
        if end > now || waits.keys.contains(where: { $0.clientID == client }) {
            schedule(.session(client), at: max(end, now.adding(configuration.sessionTimeout)))
            return
        }
        sessions[client] = nil
        if let user = session.principal?.user { sessionsPerUser.decrement(user) }
    }

    /// Why `principal` may not use the session of `client`, or nil when it may: with authentication
    /// on, a session belongs to the user whose command made it (issue 33: a user that knew another's
    /// client id, which LockInfo shows, could use up its sequence numbers and read its remembered
    /// answers). Checked before an answer is recalled, so another user learns nothing of it.
    func sessionRefusal(_ session: Session, _ client: ClientID, _ principal: Principal) -> ErrorReply? {
        guard let owner = session.principal?.user, owner != principal.user else { return nil }
        return ErrorReply(
            .permissionDenied, "client id \(client) belongs to another user's session: each client picks its own random id")
    }

    /// Why a new session for `principal` would break a quota, or nil. Without authentication (or
    /// without a principal) only `maxClients` counts; with it, a user without `cluster:admin` holds at
    /// most `maxClientsPerUser` sessions, and such users together leave a tenth for admins.
    func newSessionRefusal(_ principal: Principal?) -> ErrorReply? {
        let total = configuration.maxClients
        let timeout = "a session ends \(configuration.sessionTimeout) after its client's last command"
        if sessions.count >= total {
            return ErrorReply(.quotaExceeded, "\(sessions.count) clients have sessions, the most allowed (limits.maxClients); \(timeout)")
        }
        guard auth.enabled, let principal, !auth.isAdmin(principal.user) else { return nil }
        let perUser = configuration.maxClientsPerUser > 0 ? configuration.maxClientsPerUser : max(1, total / 4)
        let held = sessionsPerUser[principal.user] ?? 0
        if held >= perUser {
            return ErrorReply(
                .quotaExceeded, "user '\(principal.user)' holds \(held) sessions, the most one user may (limits.maxClientsPerUser); \(timeout)")
        }
        let reserve = max(1, total / 10)
        let admins = sessionsPerUser.reduce(0) { $0 + (auth.isAdmin($1.key) ? $1.value : 0) }
        if sessions.count - admins >= total - reserve {
            return ErrorReply(
                .quotaExceeded, "users without cluster:admin hold \(sessions.count - admins) sessions, all but the \(reserve) kept for admins (limits.maxClients); \(timeout)")
        }
        return nil
    }
}

extension StateMachine {
    func validate(_ command: Command) -> ErrorReply? {
        switch command {
        case .acquireLock(let key, let owner, let ttl, let wait):
            return checkName(key, "key") ?? checkLength(owner, "owner") ?? checkTTL(ttl) ?? checkWait(wait)
        case .renewLock(let key, _, let ttl):
            return checkName(key, "key") ?? checkTTL(ttl)
        case .releaseLock(let key, _):
            return checkName(key, "key")
        case .addJob(let spec):
            return validate(spec)
        case .addJobs(let specs):
            if specs.isEmpty { return ErrorReply(.invalidArgument, "a batch must hold at least one job") }
            if specs.count > configuration.maxBatch {
                return ErrorReply(.invalidArgument, "a batch holds \(specs.count) jobs, more than the maximum of \(configuration.maxBatch)")
            }
            for (i, spec) in specs.enumerated() {
                if let e = validate(spec) { return ErrorReply(e.code, "job \(i) of the batch: \(e.message); no job was added") }
            }
            return nil
        case .claimJob(let types, let worker, let wait):
            return validateClaim(types: types, worker: worker) ?? checkWait(wait)
        case .claimJobs(let types, let worker, let max):
            if max == 0 || Int(max) > configuration.maxBatch {
                return ErrorReply(.invalidArgument, "max must be 1 to \(configuration.maxBatch), not \(max)")
            }
            return validateClaim(types: types, worker: worker)
        case .completeJobs(let completions, let claimMax, let types, let worker):
            if completions.count > configuration.maxBatch {
                return ErrorReply(
                    .invalidArgument, "a batch holds \(completions.count) completions, more than the maximum of \(configuration.maxBatch)")
            }
            if Int(claimMax) > configuration.maxBatch {
                return ErrorReply(.invalidArgument, "claim_max must be 0 to \(configuration.maxBatch), not \(claimMax)")
            }
            if completions.isEmpty && claimMax == 0 {
                return ErrorReply(.invalidArgument, "a batch must complete at least one job or claim at least one")
            }
            return claimMax == 0 ? nil : validateClaim(types: types, worker: worker)
        case .claimJobByID(_, let worker):
            return checkLength(worker, "worker")
        case .extendJob(_, _, let ttl):
            return ttl == .zero ? nil : checkTTL(ttl)
        case .completeJob, .failJob, .abortJob, .deleteJob, .requeueJob, .purgeJobs:
            return nil
        case .addUser, .deleteUser, .grantRole, .revokeRole, .addToken, .removeToken, .addRole, .deleteRole,
            .grantPermission, .revokePermission:
            return nil  // checked as they are applied
        case .forceReleaseLock(let key):
            return checkName(key, "key")
        case .putSchedule(let spec):
            return validate(spec)
        case .deleteSchedule(let name), .pauseSchedule(let name), .resumeSchedule(let name), .triggerSchedule(let name):
            return checkName(name, "schedule name")
        }
    }

    func validate(_ query: Query) -> ErrorReply? {
        switch query {
        case .getLock(let key): checkName(key, "key")
        case .listLocks(let prefix, let after, _): checkLength(prefix, "prefix") ?? checkLength(after, "after")
        case .getJob: nil
        case .listJobs(let f): checkLength(f.type, "type")
        case .jobRunning(let type): checkName(type, "type")
        case .listLeases, .nodeStatus, .listAuth: nil
        case .getSchedule(let name): checkName(name, "schedule name")
        case .listSchedules(let after, _): checkLength(after, "after")
        }
    }

    /// A job as JOB_ADD (or one job of JOB_ADD_BATCH) gives it.
    func validate(_ spec: JobSpec) -> ErrorReply? {
        if let e = checkName(spec.type, "type") ?? checkLength(spec.uniqueKey, "unique key") { return e }
        if spec.timeout != .zero, let e = checkTTL(spec.timeout) { return e }
        if spec.delay > configuration.maxDelay {
            return ErrorReply(.invalidArgument, "delay \(spec.delay) exceeds the maximum of \(configuration.maxDelay)")
        }
        if spec.maxAttempts > configuration.maxAttemptsLimit {
            return ErrorReply(
                .invalidArgument, "max attempts \(spec.maxAttempts) exceeds the maximum of \(configuration.maxAttemptsLimit)")
        }
        if spec.backoff > configuration.maxBackoff {
            return ErrorReply(.invalidArgument, "backoff \(spec.backoff) exceeds the maximum of \(configuration.maxBackoff)")
        }
        return nil
    }

    /// The types and worker of JOB_CLAIM or JOB_CLAIM_BATCH.
    func validateClaim(types: [String], worker: String) -> ErrorReply? {
        if types.isEmpty { return ErrorReply(.invalidArgument, "a claim must name at least one job type") }
        if types.count > configuration.maxClaimTypes {
            return ErrorReply(.invalidArgument, "a claim may name at most \(configuration.maxClaimTypes) job types")
        }
        for t in types { if let e = checkName(t, "type") { return e } }
        return checkLength(worker, "worker")
    }

    func checkName(_ s: String, _ what: String) -> ErrorReply? {
        if s.isEmpty { return ErrorReply(.invalidArgument, "\(what) must not be empty") }
        return checkLength(s, what)
    }

    func checkLength(_ s: String, _ what: String) -> ErrorReply? {
        let n = s.utf8.count
        guard n <= configuration.maxKeyLength else {
            return ErrorReply(.invalidArgument, "\(what) is \(n) bytes, longer than the maximum of \(configuration.maxKeyLength)")
        }
        return nil
    }

    func checkTTL(_ ttl: Milliseconds) -> ErrorReply? {
        guard ttl >= configuration.minTTL, ttl <= configuration.maxTTL else {
            return ErrorReply(
                .invalidArgument,
                "ttl \(ttl) is outside \(configuration.minTTL.rawValue)...\(configuration.maxTTL.rawValue) ms")
        }
        return nil
    }

    func checkWait(_ wait: Milliseconds) -> ErrorReply? {
        guard wait <= configuration.maxWait else {
            return ErrorReply(.invalidArgument, "wait \(wait) exceeds the maximum of \(configuration.maxWait)")
        }
        return nil
    }
}

extension String {
    /// The longest prefix of `self` that is at most `maxBytes` bytes of UTF-8, cut between characters.
    func truncated(toUTF8Bytes maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        var end = startIndex
        var bytes = 0
        for i in indices {
            let n = self[i].utf8.count
            if bytes + n > maxBytes { break }
            bytes += n
            end = index(after: i)
        }
        return String(self[..<end])
    }
}

extension Dictionary where Value == Int {
    /// Counts one down, dropping the key at zero.
    mutating func decrement(_ key: Key) {
        guard let n = self[key] else { return }
        self[key] = n > 1 ? n - 1 : nil
    }
}
