import NIOCore

extension Reply {
    /// Appends this reply's body (everything after the frame header) as protocol `version` lays it out.
    public func encodeBody(into b: inout ByteBuffer, version: UInt16 = batonProtocolVersion) {
        switch self {
        case .hello(let h):
            b.writeU16(h.version)
            b.writeStr(h.nodeID)
            b.writeU64(h.serverTime.milliseconds)
            b.writeU32(h.maxFrameSize)
            b.writeU16(h.maxKeyLength)
            b.writeU32(h.minTTL.rawValue)
            b.writeU32(h.maxTTL.rawValue)
            b.writeU32(h.idleTimeout.rawValue)
        case .pong(let t):
            b.writeU64(t.milliseconds)
        case .lockAcquired(.granted(let token, let expiresAt, let left)):
            b.writeU8(0)
            b.writeU64(token.rawValue)
            b.writeU64(expiresAt.milliseconds)
            b.writeU32(left.rawValue)
        case .lockAcquired(.busy(let holder, let expiresAt)):
            b.writeU8(1)
            b.writeStr(holder)
            b.writeU64(expiresAt.milliseconds)
        case .lockRenewed(let t, let left), .jobExtended(let t, let left):
            b.writeU64(t.milliseconds)
            b.writeU32(left.rawValue)
        case .lockReleased, .jobCompleted, .jobAborted, .jobDeleted, .jobRequeued:
            break
        case .lock(let info):
            if let info {
                b.writeU8(1)
                info.encode(into: &b)
            } else {
                b.writeU8(0)
            }
        case .locks(let infos):
            b.writeU32(UInt32(infos.count))
            for i in infos { i.encode(into: &b) }
        case .jobAdded(let id, let created):
            b.writeU64(id.rawValue)
            b.writeU8(created ? 1 : 0)
        case .jobClaimed(let job):
            if let job {
                b.writeU8(1)
                job.encode(into: &b)
            } else {
                b.writeU8(0)
            }
        case .jobClaimedByID(let job):
            job.encode(into: &b)
        case .jobsAdded(let added):
            b.writeU16(UInt16(truncatingIfNeeded: added.count))
            for a in added {
                b.writeU64(a.id.rawValue)
                b.writeU8(a.created ? 1 : 0)
            }
        case .jobsClaimed(let jobs):
            b.writeU16(UInt16(truncatingIfNeeded: jobs.count))
            for job in jobs { job.encode(into: &b) }
        case .jobsCompleted(let outcomes, let jobs):
            b.writeU16(UInt16(truncatingIfNeeded: outcomes.count))
            for code in outcomes { b.writeU16(code?.rawValue ?? 0) }
            b.writeU16(UInt16(truncatingIfNeeded: jobs.count))
            for job in jobs { job.encode(into: &b) }
        case .jobFailed(let state, let retryAt):
            b.writeU8(state.rawValue)
            b.writeU64(retryAt.milliseconds)
        case .job(let info):
            info.encode(into: &b)
        case .jobs(let infos, let next):
            b.writeU32(UInt32(infos.count))
            for i in infos { i.encode(into: &b) }
            b.writeU64(next.rawValue)
        case .jobRunning(let count), .jobsPurged(let count):
            b.writeU32(count)
        case .lockForceReleased(let token):
            b.writeU64(token.rawValue)
        case .leases(let leases):
            b.writeU32(UInt32(leases.count))
            for l in leases {
                b.writeU8(l.kind.rawValue)
                b.writeStr(l.key)
                b.writeU64(l.jobID.rawValue)
                b.writeStr(l.owner)
                b.writeU64(l.token.rawValue)
                b.writeU64(l.expiresAt.milliseconds)
            }
        case .status(let s):
            b.writeStr(s.nodeID)
            b.writeStr(s.address)
            b.writeU8(s.role.rawValue)
            b.writeU64(s.term)
            b.writeU64(s.commitIndex)
            b.writeU64(s.appliedIndex)
            b.writeU64(s.uptimeMilliseconds)
            b.writeU64(s.serverTime.milliseconds)
            b.writeU32(s.connections)
            b.writeU8(s.durable ? 1 : 0)
            let m = s.summary
            for v in [m.locksHeld, m.lockWaiters, m.claimWaiters, m.jobsQueued, m.jobsRunning, m.jobsCompleted, m.jobsDead, m.sessions] {
                b.writeU32(v)
            }
        case .authenticated(let user):
            b.writeStr(user)
        case .authUpdated:
            break
        case .tokenAdded(let id):
            b.writeU64(id.rawValue)
        case .auth(let listing):
            listing.encode(into: &b)
        case .schedulePut(let created):
            b.writeU8(created ? 1 : 0)
        case .scheduleUpdated:
            break
        case .scheduleTriggered(let id):
            b.writeU64(id.rawValue)
        case .schedule(let info):
            if let info {
                b.writeU8(1)
                info.encode(into: &b)
            } else {
                b.writeU8(0)
            }
        case .schedules(let infos):
            b.writeU32(UInt32(infos.count))
            for info in infos { info.encode(into: &b) }
        case .error(let e):
            b.writeU16(e.code.rawValue)
            b.writeStr(e.message)
            if e.code == .notLeader && version >= 3 { b.writeStr(e.leader ?? "") }
        }
    }

    /// Decodes a reply body of protocol `version`. Every byte of `body` must be used.
    public static func decode(
        opcode: Opcode, body: ByteBuffer, version: UInt16 = batonProtocolVersion
    ) throws(ErrorReply) -> Reply {
        var b = body
        let reply: Reply
        switch opcode {
        case Opcode.hello.reply:
            reply = .hello(
                HelloReply(
                    version: try b.readU16("version"), nodeID: try b.readStr("node_id"),
                    serverTime: Timestamp(milliseconds: try b.readU64("server_time")),
                    maxFrameSize: try b.readU32("max_frame_size"), maxKeyLength: try b.readU16("max_key_length"),
                    minTTL: Milliseconds(try b.readU32("min_ttl_ms")), maxTTL: Milliseconds(try b.readU32("max_ttl_ms")),
                    idleTimeout: Milliseconds(try b.readU32("idle_timeout_ms"))))
        case Opcode.ping.reply:
            reply = .pong(serverTime: Timestamp(milliseconds: try b.readU64("server_time")))
        case Opcode.lockAcquire.reply:
            switch try b.readU8("status") {
            case 0:
                reply = .lockAcquired(
                    .granted(
                        token: FencingToken(try b.readU64("token")),
                        expiresAt: Timestamp(milliseconds: try b.readU64("expires_at")),
                        leaseLeft: Milliseconds(try b.readU32("lease_left_ms"))))
            case 1:
                reply = .lockAcquired(
                    .busy(holder: try b.readStr("holder"), expiresAt: Timestamp(milliseconds: try b.readU64("expires_at"))))
            case let s:
                throw ErrorReply(.malformedFrame, "unknown acquire status \(s)")
            }
        case Opcode.lockRenew.reply:
            reply = .lockRenewed(
                expiresAt: Timestamp(milliseconds: try b.readU64("expires_at")), leaseLeft: Milliseconds(try b.readU32("lease_left_ms")))
        case Opcode.lockRelease.reply:
            reply = .lockReleased
        case Opcode.lockGet.reply:
            reply = .lock(try b.readU8("present") == 0 ? nil : try LockInfo.decode(from: &b))
        case Opcode.lockList.reply:
            let n = try b.readU32("count")
            var infos: [LockInfo] = []
            for _ in 0..<n { infos.append(try LockInfo.decode(from: &b)) }
            reply = .locks(infos)
        case Opcode.jobAdd.reply:
            reply = .jobAdded(JobID(try b.readU64("job_id")), created: try b.readU8("created") != 0)
        case Opcode.jobClaim.reply:
            reply = .jobClaimed(try b.readU8("found") == 0 ? nil : try ClaimedJob.decode(from: &b))
        case Opcode.jobClaimByID.reply:
            reply = .jobClaimedByID(try ClaimedJob.decode(from: &b))
        case Opcode.jobAddBatch.reply:
            let count = try b.readU16("count")
            var added: [AddedJob] = []
            added.reserveCapacity(Int(count))
            for _ in 0..<count {
                added.append(AddedJob(id: JobID(try b.readU64("job_id")), created: try b.readU8("created") != 0))
            }
            reply = .jobsAdded(added)
        case Opcode.jobClaimBatch.reply:
            let count = try b.readU16("count")
            var jobs: [ClaimedJob] = []
            jobs.reserveCapacity(Int(count))
            for _ in 0..<count { jobs.append(try ClaimedJob.decode(from: &b)) }
            reply = .jobsClaimed(jobs)
        case Opcode.jobCompleteBatch.reply:
            let count = try b.readU16("count")
            var outcomes: [ErrorCode?] = []
            outcomes.reserveCapacity(Int(count))
            for _ in 0..<count {
                let code = try b.readU16("code")
                outcomes.append(code == 0 ? nil : ErrorCode(rawValue: code))
            }
            let claimed = try b.readU16("claimed")
            var jobs: [ClaimedJob] = []
            jobs.reserveCapacity(Int(claimed))
            for _ in 0..<claimed { jobs.append(try ClaimedJob.decode(from: &b)) }
            reply = .jobsCompleted(outcomes, claimed: jobs)
        case Opcode.jobExtend.reply:
            reply = .jobExtended(
                leaseExpiresAt: Timestamp(milliseconds: try b.readU64("lease_expires_at")),
                leaseLeft: Milliseconds(try b.readU32("lease_left_ms")))
        case Opcode.jobComplete.reply:
            reply = .jobCompleted
        case Opcode.jobFail.reply:
            reply = .jobFailed(state: try JobState.decode(from: &b), retryAt: Timestamp(milliseconds: try b.readU64("retry_at")))
        case Opcode.jobAbort.reply:
            reply = .jobAborted
        case Opcode.jobGet.reply:
            reply = .job(try JobInfo.decode(from: &b))
        case Opcode.jobList.reply:
            let n = try b.readU32("count")
            var infos: [JobInfo] = []
            for _ in 0..<n { infos.append(try JobInfo.decode(from: &b)) }
            reply = .jobs(infos, next: JobID(try b.readU64("next")))
        case Opcode.jobDelete.reply:
            reply = .jobDeleted
        case Opcode.jobRequeue.reply:
            reply = .jobRequeued
        case Opcode.jobRunning.reply:
            reply = .jobRunning(count: try b.readU32("count"))
        case Opcode.jobPurge.reply:
            reply = .jobsPurged(count: try b.readU32("count"))
        case Opcode.lockForceRelease.reply:
            reply = .lockForceReleased(token: FencingToken(try b.readU64("token")))
        case Opcode.leaseList.reply:
            var leases: [LeaseInfo] = []
            for _ in 0..<(try b.readU32("count")) {
                let rawKind = try b.readU8("kind")
                guard let kind = LeaseInfo.Kind(rawValue: rawKind) else {
                    throw ErrorReply(.malformedFrame, "unknown lease kind \(rawKind)")
                }
                leases.append(
                    LeaseInfo(
                        kind: kind, key: try b.readStr("key"), jobID: JobID(try b.readU64("job_id")),
                        owner: try b.readStr("owner"), token: FencingToken(try b.readU64("token")),
                        expiresAt: Timestamp(milliseconds: try b.readU64("expires_at"))))
            }
            reply = .leases(leases)
        case Opcode.nodeStatus.reply:
            let nodeID = try b.readStr("node_id")
            let address = try b.readStr("address")
            let rawRole = try b.readU8("role")
            guard let role = NodeStatus.Role(rawValue: rawRole) else {
                throw ErrorReply(.malformedFrame, "unknown role \(rawRole)")
            }
            let term = try b.readU64("term")
            let commit = try b.readU64("commit_index")
            let applied = try b.readU64("applied_index")
            let uptime = try b.readU64("uptime_ms")
            let time = Timestamp(milliseconds: try b.readU64("server_time"))
            let connections = try b.readU32("connections")
            let durable = try b.readU8("durable") != 0
            var m = StateSummary()
            m.locksHeld = try b.readU32("locks_held")
            m.lockWaiters = try b.readU32("lock_waiters")
            m.claimWaiters = try b.readU32("claim_waiters")
            m.jobsQueued = try b.readU32("jobs_queued")
            m.jobsRunning = try b.readU32("jobs_running")
            m.jobsCompleted = try b.readU32("jobs_completed")
            m.jobsDead = try b.readU32("jobs_dead")
            m.sessions = try b.readU32("sessions")
            reply = .status(
                NodeStatus(
                    nodeID: nodeID, address: address, role: role, term: term, commitIndex: commit, appliedIndex: applied,
                    uptimeMilliseconds: uptime, serverTime: time, connections: connections, durable: durable, summary: m))
        case Opcode.auth.reply:
            reply = .authenticated(user: try b.readStr("user"))
        case Opcode.tokenAdd.reply:
            reply = .tokenAdded(TokenID(try b.readU64("token_id")))
        case Opcode.authList.reply:
            reply = .auth(try AuthListing.decode(from: &b))
        case _ where Opcode.authChanges.contains(Opcode(rawValue: opcode.rawValue & 0x7F)) && opcode.isReply:
            reply = .authUpdated(Opcode(rawValue: opcode.rawValue & 0x7F))
        case Opcode.schedulePut.reply:
            reply = .schedulePut(created: try b.readU8("created") != 0)
        case _ where Opcode.scheduleChanges.contains(Opcode(rawValue: opcode.rawValue & 0x7F)) && opcode.isReply:
            reply = .scheduleUpdated(Opcode(rawValue: opcode.rawValue & 0x7F))
        case Opcode.scheduleTrigger.reply:
            reply = .scheduleTriggered(JobID(try b.readU64("job_id")))
        case Opcode.scheduleGet.reply:
            reply = .schedule(try b.readU8("found") != 0 ? try ScheduleInfo.decode(from: &b) : nil)
        case Opcode.scheduleList.reply:
            var infos: [ScheduleInfo] = []
            for _ in 0..<(try b.readU32("count")) { infos.append(try ScheduleInfo.decode(from: &b)) }
            reply = .schedules(infos)
        case .error:
            var e = ErrorReply(ErrorCode(rawValue: try b.readU16("code")), try b.readStr("message"))
            if e.code == .notLeader && version >= 3 { e.leader = try b.readStr("leader") }
            reply = .error(e)
        default:
            throw ErrorReply(.unknownOpcode, "unknown reply opcode \(opcode)")
        }
        guard b.readableBytes == 0 else {
            throw ErrorReply(.malformedFrame, "\(b.readableBytes) unexpected bytes after the \(opcode) body")
        }
        return reply
    }
}

extension JobState {
    static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> JobState {
        let raw = try b.readU8("state")
        guard let s = JobState(rawValue: raw) else { throw ErrorReply(.malformedFrame, "unknown job state \(raw)") }
        return s
    }
}

extension LockInfo {
    func encode(into b: inout ByteBuffer) {
        b.writeStr(key)
        b.writeStr(owner)
        b.writeU64(clientID.rawValue)
        b.writeU64(token.rawValue)
        b.writeU64(grantedAt.milliseconds)
        b.writeU64(expiresAt.milliseconds)
        b.writeU32(UInt32(waiters.count))
        for w in waiters {
            b.writeStr(w.owner)
            b.writeU64(w.clientID.rawValue)
            b.writeU64(w.deadline.milliseconds)
        }
    }

    static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> LockInfo {
        let key = try b.readStr("key")
        let owner = try b.readStr("owner")
        let client = ClientID(try b.readU64("client_id"))
        let token = FencingToken(try b.readU64("token"))
        let grantedAt = Timestamp(milliseconds: try b.readU64("granted_at"))
        let expiresAt = Timestamp(milliseconds: try b.readU64("expires_at"))
        let n = try b.readU32("waiter_count")
        var waiters: [LockWaiter] = []
        for _ in 0..<n {
            waiters.append(
                LockWaiter(
                    owner: try b.readStr("waiter_owner"), clientID: ClientID(try b.readU64("waiter_client_id")),
                    deadline: Timestamp(milliseconds: try b.readU64("waiter_deadline"))))
        }
        return LockInfo(
            key: key, owner: owner, clientID: client, token: token, grantedAt: grantedAt, expiresAt: expiresAt,
            waiters: waiters)
    }
}

extension ClaimedJob {
    func encode(into b: inout ByteBuffer) {
        b.writeU64(id.rawValue)
        b.writeStr(type)
        b.writeBytesField(payload)
        b.writeU16(attempt)
        b.writeU16(maxAttempts)
        b.writeU64(token.rawValue)
        b.writeU32(timeout.rawValue)
        b.writeU64(leaseExpiresAt.milliseconds)
        b.writeU32(leaseLeft.rawValue)
    }

    static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> ClaimedJob {
        ClaimedJob(
            id: JobID(try b.readU64("job_id")), type: try b.readStr("type"), payload: try b.readBytes("payload"),
            attempt: try b.readU16("attempt"), maxAttempts: try b.readU16("max_attempts"),
            token: FencingToken(try b.readU64("token")), timeout: Milliseconds(try b.readU32("timeout_ms")),
            leaseExpiresAt: Timestamp(milliseconds: try b.readU64("lease_expires_at")),
            leaseLeft: Milliseconds(try b.readU32("lease_left_ms")))
    }
}

extension JobInfo {
    func encode(into b: inout ByteBuffer) {
        b.writeU64(id.rawValue)
        b.writeStr(type)
        b.writeU8(state.rawValue)
        b.writeI32(priority)
        b.writeU16(attempts)
        b.writeU16(maxAttempts)
        b.writeU32(timeout.rawValue)
        b.writeU32(backoff.rawValue)
        b.writeStr(uniqueKey)
        b.writeU64(createdAt.milliseconds)
        b.writeU64(runAt.milliseconds)
        b.writeU64(leaseExpiresAt.milliseconds)
        b.writeStr(worker)
        b.writeStr(lastError)
        b.writeBytesField(payload)
        b.writeBytesField(result)
    }

    static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> JobInfo {
        JobInfo(
            id: JobID(try b.readU64("job_id")), type: try b.readStr("type"), state: try JobState.decode(from: &b),
            priority: try b.readI32("priority"), attempts: try b.readU16("attempts"),
            maxAttempts: try b.readU16("max_attempts"), timeout: Milliseconds(try b.readU32("timeout_ms")),
            backoff: Milliseconds(try b.readU32("backoff_ms")), uniqueKey: try b.readStr("unique_key"),
            createdAt: Timestamp(milliseconds: try b.readU64("created_at")),
            runAt: Timestamp(milliseconds: try b.readU64("run_at")),
            leaseExpiresAt: Timestamp(milliseconds: try b.readU64("lease_expires_at")),
            worker: try b.readStr("worker"), lastError: try b.readStr("last_error"),
            payload: try b.readBytes("payload"), result: try b.readBytes("result"))
    }
}

extension ByteBuffer {
    /// Writes `request` as one complete frame.
    public mutating func writeRequest(_ request: Request, requestID: RequestID) {
        writeFrame(opcode: request.opcode, requestID: requestID) { request.encodeBody(into: &$0) }
    }

    /// Writes `reply` as one complete frame of protocol `version`.
    public mutating func writeReply(_ reply: Reply, requestID: RequestID, version: UInt16 = batonProtocolVersion) {
        writeFrame(opcode: reply.opcode, requestID: requestID) { reply.encodeBody(into: &$0, version: version) }
    }
}
