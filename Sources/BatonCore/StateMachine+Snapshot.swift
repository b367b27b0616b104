import BatonProtocol
import DequeModule
import HeapModule
import NIOCore

/// A snapshot or log entry that cannot be restored: what kind (to match on), and a message.
public struct SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Not a Baton snapshot (its magic number).
        case notBaton
        /// Written by a version this build does not read.
        case unknownVersion
        /// Its bytes do not decode: cut short, too long, or a value out of range.
        case malformed
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "snapshot: \(message)" }
}

extension StateMachine {
    static let snapshotMagic: UInt32 = 0x4254_4E53  // "BTNS"
    /// The snapshot format this build writes. It reads every version from `oldestSnapshotVersion` on.
    ///
    /// | version | change |
    /// |---|---|
    /// | 1 | first format |
    /// | 2 | a digest (`CommandDigest`, `u64`, 0 when unknown) after each lock and claim waiter and after each remembered answer's sequence number |
    /// | 3 | the auth store (`AuthStore`) after the sessions |
    /// | 4 | the schedules after the auth store |
    /// | 5 | the sessions' owners after the schedules: `count:u32 {client:u64 user:str token:u64}` by client, for the sessions that have one |
    public static let snapshotVersion: UInt16 = 5
    public static let oldestSnapshotVersion: UInt16 = 1
    /// Remembered answers are kept as protocol version 2 lays out their bodies, whatever the clients
    /// speak. (Version 3 changed only NOT_LEADER, which the state machine never answers.)
    static let replyBodyVersion: UInt16 = 2

    /// The whole state as bytes, in format `version` (1 leaves the digests out, for members of a build
    /// that reads only version 1). Equal states give equal bytes: maps are written in key order.
    /// Timers and indexes are not written; `restore` rebuilds them from the records.
    public func snapshot(version: UInt16 = snapshotVersion) -> ByteBuffer {
        precondition((Self.oldestSnapshotVersion...Self.snapshotVersion).contains(version))
        let digests = version >= 2
        var b = ByteBuffer()
        b.writeU32(Self.snapshotMagic)
        b.writeU16(version)
        b.writeU64(now.milliseconds)
        b.writeU64(lastToken)
        b.writeU64(lastJobID)

        b.writeU32(UInt32(locks.count))
        var written = 0
        lockOrder.forEach(from: nil, inclusive: true) { key in
            guard let record = locks[key] else { return true }  // released since
            written += 1
            b.writeStr(key)
            if let h = record.holder {
                b.writeU8(1)
                b.writeStr(h.owner)
                b.writeU64(h.clientID.rawValue)
                b.writeU64(h.token.rawValue)
                b.writeU64(h.grantedAt.milliseconds)
                b.writeU64(h.expiresAt.milliseconds)
            } else {
                b.writeU8(0)
            }
            b.writeU32(UInt32(record.waiters.count))
            for w in record.waiters {
                b.writeStr(w.owner)
                b.writeU64(w.clientID.rawValue)
                b.writeU64(w.sequence.rawValue)
                b.writeU32(w.ttl.rawValue)
                b.writeU64(w.deadline.milliseconds)
                if digests { b.writeDigest(w.digest) }
            }
            return true
        }
        precondition(written == locks.count, "the lock index holds \(written) of \(locks.count) locks")

        b.writeU32(UInt32(jobs.count))
        written = 0
        jobOrder.forEach(after: nil) { id in
            guard let j = jobs[id] else { return true }  // removed since
            written += 1
            b.writeU64(id.rawValue)
            b.writeStr(j.spec.type)
            b.writeBytesField(j.spec.payload)
            b.writeI32(j.spec.priority)
            b.writeU32(j.spec.delay.rawValue)
            b.writeU16(j.spec.maxAttempts)
            b.writeU32(j.spec.timeout.rawValue)
            b.writeU32(j.spec.backoff.rawValue)
            b.writeStr(j.spec.uniqueKey)
            b.writeU8(j.state.rawValue)
            b.writeU16(j.attempts)
            b.writeU64(j.createdAt.milliseconds)
            b.writeU64(j.runAt.milliseconds)
            b.writeU64(j.leaseExpiresAt.milliseconds)
            b.writeU64(j.claimToken.rawValue)
            b.writeStr(j.worker)
            b.writeStr(j.lastError)
            b.writeBytesField(j.result)
            b.writeU32(j.generation)
            return true
        }
        precondition(written == jobs.count, "the job index holds \(written) of \(jobs.count) jobs")

        b.writeU32(UInt32(claimWaiters.count))
        for w in claimWaiters {
            b.writeU64(w.clientID.rawValue)
            b.writeU64(w.sequence.rawValue)
            b.writeStr(w.worker)
            b.writeU64(w.deadline.milliseconds)
            b.writeU16(UInt16(w.types.count))
            for t in w.types { b.writeStr(t) }
            if digests { b.writeDigest(w.digest) }
        }

        b.writeU32(UInt32(sessions.count))
        for client in sessions.keys.sorted() {
            let s = sessions[client]!
            b.writeU64(client.rawValue)
            b.writeU64(s.lastSeen.milliseconds)
            b.writeU64(s.forgottenUpTo.rawValue)
            b.writeU64(s.highestSeen.rawValue)
            b.writeU32(UInt32(s.replies.count))
            for remembered in s.replies {
                b.writeU64(remembered.sequence.rawValue)
                if digests { b.writeDigest(remembered.digest) }
                b.writeU8(remembered.reply.opcode.rawValue)
                let lengthIndex = b.writerIndex
                b.writeU32(0)
                remembered.reply.encodeBody(into: &b, version: Self.replyBodyVersion)
                b.setInteger(UInt32(b.writerIndex - lengthIndex - 4), at: lengthIndex, endianness: .big)
            }
        }
        if version >= 3 { auth.write(into: &b) }
        if version >= 4 { writeSchedules(into: &b) }
        if version >= 5 { writeSessionOwners(into: &b) }
        return b
    }

    /// Rebuilds a state machine from `snapshot()`'s bytes.
    public init(restoring snapshot: ByteBuffer, configuration: Configuration = Configuration()) throws {
        self.init(configuration: configuration)
        var b = snapshot
        var found = FoundIndexes()
        do {
            guard try b.readU32("magic") == Self.snapshotMagic else { throw SnapshotError(.notBaton, "not a Baton snapshot") }
            let version = try b.readU16("version")
            guard (Self.oldestSnapshotVersion...Self.snapshotVersion).contains(version) else {
                throw SnapshotError(
                    .unknownVersion,
                    "snapshot format \(version); this build reads \(Self.oldestSnapshotVersion)...\(Self.snapshotVersion)")
            }
            let digests = version >= 2
            now = Timestamp(milliseconds: try b.readU64("now"))
            lastToken = try b.readU64("last_token")
            lastJobID = try b.readU64("last_job_id")

            let lockCount = try b.readU32("lock_count")
            found.deadlines.reserveCapacity(Int(min(lockCount, UInt32(b.readableBytes))))
            locks.reserveCapacity(Int(min(lockCount, UInt32(b.readableBytes))))  // no rehash on the way
            lockOrder.reserveCapacity(Int(min(lockCount, UInt32(b.readableBytes))))
            for _ in 0..<lockCount {
                let key = try b.readStr("key")
                var record = LockRecord()
                if try b.readU8("has_holder") == 1 {
                    record.holder = LockHolder(
                        owner: try b.readStr("owner"), clientID: ClientID(try b.readU64("client")),
                        token: FencingToken(try b.readU64("token")),
                        grantedAt: Timestamp(milliseconds: try b.readU64("granted_at")),
                        expiresAt: Timestamp(milliseconds: try b.readU64("expires_at")))
                }
                for _ in 0..<(try b.readU32("waiter_count")) {
                    record.waiters.append(
                        LockWaitEntry(
                            owner: try b.readStr("owner"), clientID: ClientID(try b.readU64("client")),
                            sequence: SequenceNumber(try b.readU64("sequence")), ttl: Milliseconds(try b.readU32("ttl")),
                            deadline: Timestamp(milliseconds: try b.readU64("deadline")),
                            digest: digests ? try b.readDigest() : .unknown))
                }
                if locks.updateValue(record, forKey: key) != nil { throw SnapshotError(.malformed, "lock \(key) twice") }
                lockOrder.insert(key)
                index(lock: key, record, into: &found)
            }

            let jobCount = try b.readU32("job_count")
            jobs.reserveCapacity(Int(min(jobCount, UInt32(b.readableBytes))))
            jobOrder.reserveCapacity(Int(min(jobCount, UInt32(b.readableBytes))))
            for _ in 0..<jobCount {
                let id = JobID(try b.readU64("id"))
                let spec = JobSpec(
                    type: try b.readStr("type"), payload: try b.readBytes("payload"), priority: try b.readI32("priority"),
                    delay: Milliseconds(try b.readU32("delay")), maxAttempts: try b.readU16("max_attempts"),
                    timeout: Milliseconds(try b.readU32("timeout")), backoff: Milliseconds(try b.readU32("backoff")),
                    uniqueKey: try b.readStr("unique_key"))
                let rawState = try b.readU8("state")
                guard let state = JobState(rawValue: rawState) else {
                    throw SnapshotError(.malformed, "job \(id) has unknown state \(rawState)")
                }
                var job = JobRecord(
                    id: id, spec: spec, state: state, attempts: try b.readU16("attempts"),
                    createdAt: Timestamp(milliseconds: try b.readU64("created_at")),
                    runAt: Timestamp(milliseconds: try b.readU64("run_at")))
                job.leaseExpiresAt = Timestamp(milliseconds: try b.readU64("lease_expires_at"))
                job.claimToken = FencingToken(try b.readU64("claim_token"))
                job.worker = try b.readStr("worker")
                job.lastError = try b.readStr("last_error")
                job.result = try b.readBytes("result")
                job.generation = try b.readU32("generation")
                if let last = jobOrder.last, id <= last {
                    throw SnapshotError(.malformed, "job \(id) after job \(last): twice, or out of id order")
                }
                index(job, into: &found)
                jobs[id] = job
                jobOrder.append(id)
            }

            for _ in 0..<(try b.readU32("claim_waiter_count")) {
                let client = ClientID(try b.readU64("client"))
                let seq = SequenceNumber(try b.readU64("sequence"))
                let worker = try b.readStr("worker")
                let deadline = Timestamp(milliseconds: try b.readU64("deadline"))
                var types: [String] = []
                for _ in 0..<(try b.readU16("type_count")) { types.append(try b.readStr("type")) }
                let digest = digests ? try b.readDigest() : .unknown
                claimWaiters.append(
                    ClaimWaitEntry(
                        clientID: client, sequence: seq, types: types, worker: worker, deadline: deadline, digest: digest))
            }

            let sessionCount = try b.readU32("session_count")
            sessions.reserveCapacity(Int(min(sessionCount, UInt32(b.readableBytes))))
            for _ in 0..<sessionCount {
                let client = ClientID(try b.readU64("client"))
                var s = Session(lastSeen: Timestamp(milliseconds: try b.readU64("last_seen")))
                s.forgottenUpTo = SequenceNumber(try b.readU64("forgotten_up_to"))
                s.highestSeen = SequenceNumber(try b.readU64("highest_seen"))
                for _ in 0..<(try b.readU32("reply_count")) {
                    let seq = SequenceNumber(try b.readU64("sequence"))
                    let digest = digests ? try b.readDigest() : .unknown
                    let opcode = Opcode(rawValue: try b.readU8("opcode"))
                    let length = try b.readU32("length")
                    guard let body = b.readSlice(length: Int(length)) else { throw ErrorReply.truncated("reply") }
                    s.replies.append(
                        RememberedReply(sequence: seq, digest: digest, reply: try Reply.decode(opcode: opcode, body: body, version: Self.replyBodyVersion)))
                }
                sessions[client] = s
            }
            if version >= 3 { auth = try AuthStore.read(from: &b) }
            if version >= 4 { try readSchedules(from: &b) }
            if version >= 5 { try readSessionOwners(from: &b) }
        } catch let e as ErrorReply {
            throw SnapshotError(.malformed, e.message)
        }
        guard b.readableBytes == 0 else { throw SnapshotError(.malformed, "\(b.readableBytes) bytes after the end") }
        rebuildIndexes(&found)
    }

    /// What a restore gathers for the indexes as it reads each record, so that no record is read
    /// (and copied) a second time.
    struct FoundIndexes {
        var deadlines: [Deadline] = []
        var ready: [String: [ReadyEntry]] = [:]
        var completed: [CompletedEntry] = []
    }

    /// The lease and wait timers and the wait index of one restored lock.
    mutating func index(lock key: String, _ record: LockRecord, into found: inout FoundIndexes) {
        if let h = record.holder { found.deadlines.append(Deadline(time: h.expiresAt, kind: .lockLease(key: key, token: h.token))) }
        for w in record.waiters {
            waits[WaitKey(clientID: w.clientID, sequence: w.sequence)] = .lock(key)
            found.deadlines.append(Deadline(time: w.deadline, kind: .lockWait(key: key, clientID: w.clientID, sequence: w.sequence)))
        }
    }

    /// The queues, unique key, running count, timers and byte counts of one restored job.
    mutating func index(_ job: JobRecord, into found: inout FoundIndexes) {
        switch job.state {
        case .queued:
            if !job.spec.uniqueKey.isEmpty { uniqueJobs[UniqueJobKey(type: job.spec.type, key: job.spec.uniqueKey)] = job.id }
            if job.runAt > now {
                found.deadlines.append(Deadline(time: job.runAt, kind: .jobReady(job.id, generation: job.generation)))
            } else {
                found.ready[job.spec.type, default: []].append(
                    ReadyEntry(priority: job.spec.priority, runAt: job.runAt, id: job.id, generation: job.generation))
            }
        case .running:
            if !job.spec.uniqueKey.isEmpty { uniqueJobs[UniqueJobKey(type: job.spec.type, key: job.spec.uniqueKey)] = job.id }
            runningByType[job.spec.type, default: 0] += 1
            found.deadlines.append(Deadline(time: job.leaseExpiresAt, kind: .jobLease(job.id, token: job.claimToken)))
        case .completed:
            found.completed.append(CompletedEntry(completedAt: job.runAt, id: job.id))
            completedCount += 1
        case .dead:
            break
        }
        if job.state == .completed { completedJobBytes += job.bytes } else { unfinishedJobBytes += job.bytes }
    }

    /// Recreates the rest of the indexes and timers, and builds every queue from what the records
    /// gave (`found`).
    ///
    /// In no particular order: every queue here is ordered by its entries alone (a deadline by its
    /// time and kind, a ready job by priority, run-after time and id), so the order they are found
    /// in changes nothing; and each queue is built at once from all its entries (linear) rather
    /// than by one insertion after another. (Issue 38: sorting 100,000 lock keys and inserting one
    /// by one was a third of a restart's restore.)
    mutating func rebuildIndexes(_ found: inout FoundIndexes) {
        for w in claimWaiters {
            waits[WaitKey(clientID: w.clientID, sequence: w.sequence)] = .claim
            found.deadlines.append(Deadline(time: w.deadline, kind: .claimWait(clientID: w.clientID, sequence: w.sequence)))
        }
        for (client, s) in sessions {
            found.deadlines.append(Deadline(time: s.lastSeen.adding(configuration.sessionTimeout), kind: .session(client)))
            if let user = s.principal?.user { sessionsPerUser[user, default: 0] += 1 }
        }
        found.deadlines.append(contentsOf: deadlines.unordered)
        var entries: [Deadline] = []
        swap(&entries, &found.deadlines)
        deadlines = Heap(consume entries)  // the only reference: heapified in place, not copied
        for (type, entries) in found.ready { ready[type] = Heap(entries) }
        found.completed.append(contentsOf: completed.unordered)
        var done: [CompletedEntry] = []
        swap(&done, &found.completed)
        completed = Heap(consume done)
        for record in schedules.values where record.buffered != .zero { bufferedSlots[record.lastJob] = record.spec.name }
        rebuildScheduleQueue()
    }

    /// The owner of each session that has one (format 5).
    func writeSessionOwners(into b: inout ByteBuffer) {
        let owned = sessions.keys.sorted().compactMap { client in sessions[client]!.principal.map { (client, $0) } }
        b.writeU32(UInt32(owned.count))
        for (client, principal) in owned {
            b.writeU64(client.rawValue)
            b.writeStr(principal.user)
            b.writeU64(principal.token.rawValue)
        }
    }

    mutating func readSessionOwners(from b: inout ByteBuffer) throws(ErrorReply) {
        for _ in 0..<(try b.readU32("owner_count")) {
            let client = ClientID(try b.readU64("client"))
            let principal = Principal(user: try b.readStr("user"), token: TokenID(try b.readU64("token")))
            guard sessions[client] != nil else { throw ErrorReply(.malformedFrame, "an owner for client \(client), which has no session") }
            sessions[client]!.principal = principal
        }
    }

    /// `last_revision:u64 count:u32 {spec revision:u64 created_at:u64 plan_from:u64 next_slot:u64
    /// last_slot:u64 last_fire_at:u64 last_job:u64 buffered:u64 fires:u64 skips:u64 misses:u64}`, by name.
    func writeSchedules(into b: inout ByteBuffer) {
        b.writeU64(lastScheduleRevision)
        b.writeU32(UInt32(schedules.count))
        for name in schedules.keys.sorted() {
            let r = schedules[name]!
            r.spec.encode(into: &b)
            for v in [
                r.revision, r.createdAt.milliseconds, r.planFrom.milliseconds, r.nextSlot.milliseconds, r.lastSlot.milliseconds,
                r.lastFireAt.milliseconds, r.lastJob.rawValue, r.buffered.milliseconds, r.fires, r.skips, r.misses,
            ] {
                b.writeU64(v)
            }
        }
    }

    mutating func readSchedules(from b: inout ByteBuffer) throws(ErrorReply) {
        lastScheduleRevision = try b.readU64("last_revision")
        for _ in 0..<(try b.readU32("schedule_count")) {
            let spec = try ScheduleSpec.decode(from: &b)
            var r = ScheduleRecord(
                spec: spec, revision: try b.readU64("revision"), createdAt: Timestamp(milliseconds: try b.readU64("created_at")),
                planFrom: Timestamp(milliseconds: try b.readU64("plan_from")))
            r.nextSlot = Timestamp(milliseconds: try b.readU64("next_slot"))
            r.lastSlot = Timestamp(milliseconds: try b.readU64("last_slot"))
            r.lastFireAt = Timestamp(milliseconds: try b.readU64("last_fire_at"))
            r.lastJob = JobID(try b.readU64("last_job"))
            r.buffered = Timestamp(milliseconds: try b.readU64("buffered"))
            r.fires = try b.readU64("fires")
            r.skips = try b.readU64("skips")
            r.misses = try b.readU64("misses")
            schedules[spec.name] = r
        }
    }
}

extension StateMachine {
    /// `data`, a snapshot, in a format that a build reading at most `version` restores: itself when it
    /// is that old already, or else restored and written again without what `version` lacks. For a
    /// member of an older build during a rolling upgrade (the peer protocol tells which it reads).
    public static func snapshot(_ data: [UInt8], readableBy version: UInt16) throws -> [UInt8] {
        guard data.count >= 6 else { throw SnapshotError(.malformed, "\(data.count) bytes, shorter than a header") }
        let written = UInt16(data[4]) << 8 | UInt16(data[5])
        if written <= version { return data }
        let machine = try StateMachine(restoring: ByteBuffer(bytes: data))
        return Array(machine.snapshot(version: version).readableBytesView)
    }
}

extension ByteBuffer {
    /// A digest in a version-2 snapshot: its `u64` (0: not known).
    mutating func writeDigest(_ digest: CommandDigest) {
        writeU64(digest.rawValue)
    }

    mutating func readDigest() throws(ErrorReply) -> CommandDigest {
        CommandDigest(rawValue: try readU64("digest"))
    }
}

extension AuthStore {
    /// `enabled:u8  has_bootstrap:u8 [hash:32]  user_count:u32 {name:str role_count:u16 {role:str}
    /// token_count:u16 {hash:32}}  role_count:u32 {name:str permission_count:u16 {permission}}`, by name.
    func write(into b: inout ByteBuffer) {
        b.writeU8(enabled ? 1 : 0)
        b.writeU8(bootstrap == nil ? 0 : 1)
        if let bootstrap { for byte in bootstrap.bytes { b.writeU8(byte) } }
        b.writeU32(UInt32(users.count))
        for name in users.keys.sorted() {
            let user = users[name]!
            b.writeStr(name)
            b.writeU16(UInt16(user.roles.count))
            for role in user.roles { b.writeStr(role) }
            b.writeU16(UInt16(user.tokens.count))
            for id in user.tokens.keys.sorted() { for byte in user.tokens[id]!.bytes { b.writeU8(byte) } }
        }
        b.writeU32(UInt32(roles.count))
        for name in roles.keys.sorted() {
            b.writeStr(name)
            b.writeU16(UInt16(roles[name]!.count))
            for p in roles[name]! { p.encode(into: &b) }
        }
    }

    static func read(from b: inout ByteBuffer) throws(ErrorReply) -> AuthStore {
        func hash() throws(ErrorReply) -> TokenHash {
            var bytes: [UInt8] = []
            for _ in 0..<32 { bytes.append(try b.readU8("token_hash")) }
            return TokenHash(bytes: bytes)!
        }
        var store = AuthStore()
        store.enabled = try b.readU8("auth_enabled") != 0
        if try b.readU8("has_bootstrap") != 0 { store.bootstrap = try hash() }
        for _ in 0..<(try b.readU32("user_count")) {
            let name = try b.readStr("user")
            var user = User()
            for _ in 0..<(try b.readU16("role_count")) { user.roles.append(try b.readStr("role")) }
            for _ in 0..<(try b.readU16("token_count")) {
                let h = try hash()
                user.tokens[h.id] = h
            }
            store.users[name] = user
        }
        for _ in 0..<(try b.readU32("role_count")) {
            let name = try b.readStr("role")
            var permissions: [Permission] = []
            for _ in 0..<(try b.readU16("permission_count")) { permissions.append(try Permission.decode(from: &b)) }
            store.roles[name] = permissions
        }
        store.rebuildOwners()
        return store
    }
}
