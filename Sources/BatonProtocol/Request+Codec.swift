import NIOCore

extension Request {
    /// Appends this request's body (everything after the frame header).
    public func encodeBody(into b: inout ByteBuffer) {
        switch self {
        case .hello(let h):
            b.writeU16(h.version)
            b.writeU64(h.clientID.rawValue)
            b.writeStr(h.clientName)
        case .ping:
            break
        case .auth(let token):
            b.writeStr(token)
        case .command(let seq, let command):
            b.writeU64(seq.rawValue)
            command.encodeBody(into: &b)
        case .query(let q):
            q.encodeBody(into: &b)
        }
    }

    /// Decodes a request body. Every byte of `body` must be used.
    public static func decode(opcode: Opcode, body: ByteBuffer) throws(ErrorReply) -> Request {
        var b = body
        let request: Request
        switch opcode {
        case .hello:
            request = .hello(
                Hello(
                    version: try b.readU16("version"),
                    clientID: ClientID(try b.readU64("client_id")),
                    clientName: try b.readStr("client_name")))
        case .ping:
            request = .ping
        case .auth:
            // Measured before it is read: a token longer than any a node hashes is refused unread.
            guard let length = b.getInteger(at: b.readerIndex, as: UInt16.self), Int(length) <= TokenHash.maxTokenBytes else {
                if b.readableBytes < 2 { throw ErrorReply.truncated("token") }
                throw ErrorReply(.invalidArgument, "the token is longer than \(TokenHash.maxTokenBytes) bytes")
            }
            request = .auth(token: try b.readStr("token"))
        case .lockGet, .lockList, .jobGet, .jobList, .jobRunning, .leaseList, .nodeStatus, .authList, .scheduleGet,
            .scheduleList:
            request = .query(try Query.decodeBody(opcode: opcode, from: &b))
        default:
            guard Opcode.requests.contains(opcode) else {
                throw ErrorReply(.unknownOpcode, "unknown opcode \(opcode)")
            }
            let seq = SequenceNumber(try b.readU64("sequence"))
            request = .command(seq, try Command.decodeBody(opcode: opcode, from: &b))
        }
        guard b.readableBytes == 0 else {
            throw ErrorReply(.malformedFrame, "\(b.readableBytes) unexpected bytes after the \(opcode) body")
        }
        return request
    }
}

extension Command {
    public func encodeBody(into b: inout ByteBuffer) {
        switch self {
        case .acquireLock(let key, let owner, let ttl, let wait):
            b.writeStr(key)
            b.writeStr(owner)
            b.writeU32(ttl.rawValue)
            b.writeU32(wait.rawValue)
        case .renewLock(let key, let token, let ttl):
            b.writeStr(key)
            b.writeU64(token.rawValue)
            b.writeU32(ttl.rawValue)
        case .releaseLock(let key, let token):
            b.writeStr(key)
            b.writeU64(token.rawValue)
        case .addJob(let spec):
            spec.encodeAsAdded(into: &b)
        case .addJobs(let specs):
            b.writeU16(UInt16(truncatingIfNeeded: specs.count))
            for spec in specs { spec.encodeAsAdded(into: &b) }
        case .claimJobs(let types, let worker, let max):
            b.writeStr(worker)
            b.writeU16(max)
            b.writeTypes(types)
        case .completeJobs(let completions, let claimMax, let types, let worker):
            b.writeStr(worker)
            b.writeU16(claimMax)
            b.writeTypes(types)
            b.writeU16(UInt16(truncatingIfNeeded: completions.count))
            for c in completions {
                b.writeU64(c.id.rawValue)
                b.writeU64(c.token.rawValue)
                b.writeBytesField(c.result)
            }
        case .claimJob(let types, let worker, let wait):
            b.writeStr(worker)
            b.writeU32(wait.rawValue)
            b.writeU16(UInt16(types.count))
            for t in types { b.writeStr(t) }
        case .claimJobByID(let id, let worker):
            b.writeU64(id.rawValue)
            b.writeStr(worker)
        case .extendJob(let id, let token, let ttl):
            b.writeU64(id.rawValue)
            b.writeU64(token.rawValue)
            b.writeU32(ttl.rawValue)
        case .completeJob(let id, let token, let result):
            b.writeU64(id.rawValue)
            b.writeU64(token.rawValue)
            b.writeBytesField(result)
        case .failJob(let id, let token, let error):
            b.writeU64(id.rawValue)
            b.writeU64(token.rawValue)
            b.writeStr(error)
        case .abortJob(let id, let token):
            b.writeU64(id.rawValue)
            b.writeU64(token.rawValue)
        case .deleteJob(let id), .requeueJob(let id):
            b.writeU64(id.rawValue)
        case .forceReleaseLock(let key):
            b.writeStr(key)
        case .purgeJobs(let state, let olderThan):
            b.writeU8(state.rawValue)
            b.writeU32(olderThan.rawValue)
        case .addUser(let name), .deleteUser(let name), .addRole(let name), .deleteRole(let name):
            b.writeStr(name)
        case .grantRole(let user, let role), .revokeRole(let user, let role):
            b.writeStr(user)
            b.writeStr(role)
        case .addToken(let user, let hash):
            b.writeStr(user)
            for byte in hash.bytes { b.writeU8(byte) }
        case .removeToken(let user, let id):
            b.writeStr(user)
            b.writeU64(id.rawValue)
        case .grantPermission(let role, let permission), .revokePermission(let role, let permission):
            b.writeStr(role)
            permission.encode(into: &b)
        case .putSchedule(let spec):
            spec.encode(into: &b)
        case .deleteSchedule(let name), .pauseSchedule(let name), .resumeSchedule(let name), .triggerSchedule(let name):
            b.writeStr(name)
        }
    }

    public static func decodeBody(opcode: Opcode, from b: inout ByteBuffer) throws(ErrorReply) -> Command {
        switch opcode {
        case .lockAcquire:
            return .acquireLock(
                key: try b.readStr("key"), owner: try b.readStr("owner"),
                ttl: Milliseconds(try b.readU32("ttl_ms")), wait: Milliseconds(try b.readU32("wait_ms")))
        case .lockRenew:
            return .renewLock(
                key: try b.readStr("key"), token: FencingToken(try b.readU64("token")),
                ttl: Milliseconds(try b.readU32("ttl_ms")))
        case .lockRelease:
            return .releaseLock(key: try b.readStr("key"), token: FencingToken(try b.readU64("token")))
        case .jobAdd:
            return .addJob(try JobSpec.decodeAsAdded(from: &b))
        case .jobAddBatch:
            let count = try b.readU16("count")
            var specs: [JobSpec] = []
            specs.reserveCapacity(Int(count))
            for _ in 0..<count { specs.append(try JobSpec.decodeAsAdded(from: &b)) }
            return .addJobs(specs)
        case .jobClaimBatch:
            let worker = try b.readStr("worker")
            let max = try b.readU16("max")
            let types = try b.readTypes()
            return .claimJobs(types: types, worker: worker, max: max)
        case .jobCompleteBatch:
            let worker = try b.readStr("worker")
            let claimMax = try b.readU16("claim_max")
            let types = try b.readTypes()
            let count = try b.readU16("count")
            var completions: [JobCompletion] = []
            completions.reserveCapacity(min(Int(count), b.readableBytes / 20))  // each takes 20 bytes at least
            for _ in 0..<count {
                completions.append(
                    JobCompletion(
                        id: JobID(try b.readU64("job_id")), token: FencingToken(try b.readU64("token")),
                        result: try b.readBytes("result")))
            }
            return .completeJobs(completions, claimMax: claimMax, types: types, worker: worker)
        case .jobClaim:
            let worker = try b.readStr("worker")
            let wait = Milliseconds(try b.readU32("wait_ms"))
            let types = try b.readTypes()
            return .claimJob(types: types, worker: worker, wait: wait)
        case .jobClaimByID:
            return .claimJobByID(JobID(try b.readU64("job_id")), worker: try b.readStr("worker"))
        case .jobExtend:
            return .extendJob(
                JobID(try b.readU64("job_id")), token: FencingToken(try b.readU64("token")),
                ttl: Milliseconds(try b.readU32("ttl_ms")))
        case .jobComplete:
            return .completeJob(
                JobID(try b.readU64("job_id")), token: FencingToken(try b.readU64("token")),
                result: try b.readBytes("result"))
        case .jobFail:
            return .failJob(
                JobID(try b.readU64("job_id")), token: FencingToken(try b.readU64("token")),
                error: try b.readStr("error"))
        case .jobAbort:
            return .abortJob(JobID(try b.readU64("job_id")), token: FencingToken(try b.readU64("token")))
        case .jobDelete:
            return .deleteJob(JobID(try b.readU64("job_id")))
        case .jobRequeue:
            return .requeueJob(JobID(try b.readU64("job_id")))
        case .lockForceRelease:
            return .forceReleaseLock(key: try b.readStr("key"))
        case .jobPurge:
            let raw = try b.readU8("state")
            guard let state = JobState(rawValue: raw) else { throw ErrorReply(.invalidArgument, "unknown job state \(raw)") }
            return .purgeJobs(state: state, olderThan: Milliseconds(try b.readU32("older_than_ms")))
        case .userAdd:
            return .addUser(name: try b.readStr("user"))
        case .userDelete:
            return .deleteUser(name: try b.readStr("user"))
        case .userGrant:
            return .grantRole(user: try b.readStr("user"), role: try b.readStr("role"))
        case .userRevoke:
            return .revokeRole(user: try b.readStr("user"), role: try b.readStr("role"))
        case .tokenAdd:
            let user = try b.readStr("user")
            var bytes: [UInt8] = []
            for _ in 0..<32 { bytes.append(try b.readU8("token_hash")) }
            return .addToken(user: user, hash: TokenHash(bytes: bytes)!)
        case .tokenRemove:
            return .removeToken(user: try b.readStr("user"), id: TokenID(try b.readU64("token_id")))
        case .roleAdd:
            return .addRole(name: try b.readStr("role"))
        case .roleDelete:
            return .deleteRole(name: try b.readStr("role"))
        case .roleGrant:
            return .grantPermission(role: try b.readStr("role"), try Permission.decode(from: &b))
        case .roleRevoke:
            return .revokePermission(role: try b.readStr("role"), try Permission.decode(from: &b))
        case .schedulePut:
            return .putSchedule(try ScheduleSpec.decode(from: &b))
        case .scheduleDelete:
            return .deleteSchedule(name: try b.readStr("name"))
        case .schedulePause:
            return .pauseSchedule(name: try b.readStr("name"))
        case .scheduleResume:
            return .resumeSchedule(name: try b.readStr("name"))
        case .scheduleTrigger:
            return .triggerSchedule(name: try b.readStr("name"))
        default:
            throw ErrorReply(.unknownOpcode, "unknown opcode \(opcode)")
        }
    }
}

extension Query {
    public func encodeBody(into b: inout ByteBuffer) {
        switch self {
        case .getLock(let key):
            b.writeStr(key)
        case .listLocks(let prefix, let after, let limit):
            b.writeStr(prefix)
            b.writeStr(after)
            b.writeU16(limit)
        case .getJob(let id):
            b.writeU64(id.rawValue)
        case .listJobs(let f):
            b.writeStr(f.type)
            b.writeU8(f.state?.rawValue ?? 0xFF)
            b.writeU64(f.after.rawValue)
            b.writeU16(f.limit)
        case .jobRunning(let type):
            b.writeStr(type)
        case .listLeases(let limit):
            b.writeU16(limit)
        case .nodeStatus, .listAuth:
            break
        case .getSchedule(let name):
            b.writeStr(name)
        case .listSchedules(let after, let limit):
            b.writeStr(after)
            b.writeU16(limit)
        }
    }

    static func decodeBody(opcode: Opcode, from b: inout ByteBuffer) throws(ErrorReply) -> Query {
        switch opcode {
        case .lockGet:
            return .getLock(key: try b.readStr("key"))
        case .lockList:
            return .listLocks(prefix: try b.readStr("prefix"), after: try b.readStr("after"), limit: try b.readU16("limit"))
        case .jobGet:
            return .getJob(JobID(try b.readU64("job_id")))
        case .jobList:
            let type = try b.readStr("type")
            let rawState = try b.readU8("state")
            let state: JobState?
            if rawState == 0xFF {
                state = nil
            } else if let s = JobState(rawValue: rawState) {
                state = s
            } else {
                throw ErrorReply(.invalidArgument, "unknown job state \(rawState)")
            }
            return .listJobs(
                JobFilter(type: type, state: state, after: JobID(try b.readU64("after")), limit: try b.readU16("limit")))
        case .jobRunning:
            return .jobRunning(type: try b.readStr("type"))
        case .leaseList:
            return .listLeases(limit: try b.readU16("limit"))
        case .nodeStatus:
            return .nodeStatus
        case .authList:
            return .listAuth
        case .scheduleGet:
            return .getSchedule(name: try b.readStr("name"))
        case .scheduleList:
            return .listSchedules(after: try b.readStr("after"), limit: try b.readU16("limit"))
        default:
            throw ErrorReply(.unknownOpcode, "unknown opcode \(opcode)")
        }
    }
}

extension Permission {
    /// `resource:u8 actions:u8 pattern:str`.
    public func encode(into b: inout ByteBuffer) {
        b.writeU8(resource.rawValue)
        b.writeU8(actions.rawValue)
        b.writeStr(pattern)
    }

    public static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> Permission {
        let rawResource = try b.readU8("resource")
        guard let resource = Resource(rawValue: rawResource) else {
            throw ErrorReply(.invalidArgument, "unknown permission resource \(rawResource)")
        }
        let actions = Actions(rawValue: try b.readU8("actions"))
        guard !actions.isEmpty, Actions.known(for: resource).isSuperset(of: actions) else {
            throw ErrorReply(.invalidArgument, "actions 0x\(String(actions.rawValue, radix: 16)) are not all \(resource.name) actions")
        }
        return Permission(resource, actions, try b.readStr("pattern"))
    }
}

extension AuthListing {
    func encode(into b: inout ByteBuffer) {
        b.writeU8(enabled ? 1 : 0)
        b.writeU32(UInt32(users.count))
        for u in users {
            b.writeStr(u.name)
            b.writeU16(UInt16(u.roles.count))
            for r in u.roles { b.writeStr(r) }
            b.writeU16(UInt16(u.tokens.count))
            for t in u.tokens { b.writeU64(t.rawValue) }
        }
        b.writeU32(UInt32(roles.count))
        for r in roles {
            b.writeStr(r.name)
            b.writeU16(UInt16(r.permissions.count))
            for p in r.permissions { p.encode(into: &b) }
        }
    }

    static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> AuthListing {
        let enabled = try b.readU8("enabled") != 0
        var users: [User] = []
        for _ in 0..<(try b.readU32("user_count")) {
            let name = try b.readStr("user")
            var roles: [String] = []
            for _ in 0..<(try b.readU16("role_count")) { roles.append(try b.readStr("role")) }
            var tokens: [TokenID] = []
            for _ in 0..<(try b.readU16("token_count")) { tokens.append(TokenID(try b.readU64("token_id"))) }
            users.append(User(name: name, roles: roles, tokens: tokens))
        }
        var roles: [Role] = []
        for _ in 0..<(try b.readU32("role_count")) {
            let name = try b.readStr("role")
            var permissions: [Permission] = []
            for _ in 0..<(try b.readU16("permission_count")) { permissions.append(try Permission.decode(from: &b)) }
            roles.append(Role(name: name, permissions: permissions))
        }
        return AuthListing(enabled: enabled, users: users, roles: roles)
    }
}

extension JobSpec {
    /// The job's fields as JOB_ADD carries them (and each job of JOB_ADD_BATCH).
    func encodeAsAdded(into b: inout ByteBuffer) {
        b.writeStr(type)
        b.writeBytesField(payload)
        b.writeI32(priority)
        b.writeU32(delay.rawValue)
        b.writeU16(maxAttempts)
        b.writeU32(timeout.rawValue)
        b.writeU32(backoff.rawValue)
        b.writeStr(uniqueKey)
    }

    static func decodeAsAdded(from b: inout ByteBuffer) throws(ErrorReply) -> JobSpec {
        JobSpec(
            type: try b.readStr("type"), payload: try b.readBytes("payload"),
            priority: try b.readI32("priority"), delay: Milliseconds(try b.readU32("delay_ms")),
            maxAttempts: try b.readU16("max_attempts"), timeout: Milliseconds(try b.readU32("timeout_ms")),
            backoff: Milliseconds(try b.readU32("backoff_ms")), uniqueKey: try b.readStr("unique_key"))
    }
}

extension ByteBuffer {
    /// The job types of a claim (JOB_CLAIM, JOB_CLAIM_BATCH, JOB_COMPLETE_BATCH): `type_count: u16`,
    /// then that many `type: str`.
    fileprivate mutating func readTypes() throws(ErrorReply) -> [String] {
        let count = try readU16("type_count")
        var types: [String] = []
        types.reserveCapacity(Int(count))
        for _ in 0..<count { types.append(try readStr("type")) }
        return types
    }

    fileprivate mutating func writeTypes(_ types: [String]) {
        writeU16(UInt16(truncatingIfNeeded: types.count))
        for t in types { writeStr(t) }
    }
}
