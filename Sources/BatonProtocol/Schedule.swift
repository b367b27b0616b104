import NIOCore

/// What a schedule does when its slot comes while the job of its previous slot is still queued or
/// running.
public enum OverlapPolicy: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The slot adds no job and is counted skipped (the default, as Sidekiq's and Temporal's).
    case skip = 0
    /// The slot adds its job anyway: jobs of several slots may run at once.
    case allow = 1
    /// One slot waits and adds its job when the previous job ends (completed, dead or deleted);
    /// further slots while one waits are skipped.
    case bufferOne = 2

    public var description: String {
        switch self {
        case .skip: "skip"
        case .allow: "allow"
        case .bufferOne: "buffer-one"
        }
    }
}

/// A recurring job: when it fires (a fixed interval or a cron expression) and the job each slot adds.
///
/// Slots of an interval are the multiples of it since the Unix epoch (every 60 s: on each minute,
/// UTC); slots of a cron expression are its matching minutes in UTC (`CronSchedule` says why UTC).
public struct ScheduleSpec: Hashable, Sendable {
    /// Unique in the cluster.
    public var name: String
    /// The interval between slots; zero when `cron` is set. Exactly one of the two is set.
    public var every: Milliseconds
    /// Five-field cron expression or `@hourly`-style name, in UTC; empty when `every` is set.
    public var cron: String
    /// Each slot's job becomes claimable up to this long after its slot (the same delay on every
    /// member: derived from the name and the slot), so that many schedules on one slot do not
    /// start at once.
    public var jitter: Milliseconds
    /// The job each slot adds. Its `delay` and `uniqueKey` must be empty: the schedule sets them.
    public var job: JobSpec
    public var overlap: OverlapPolicy
    /// A slot that could not fire on time (no leader, the cluster down) is fired late if it is at
    /// most this old, and otherwise counted missed. Zero: the default, one minute.
    public var catchUp: Milliseconds
    /// A paused schedule fires nothing; its slots while paused are neither fired nor missed.
    public var paused: Bool

    public init(
        name: String, every: Milliseconds = .zero, cron: String = "", jitter: Milliseconds = .zero, job: JobSpec,
        overlap: OverlapPolicy = .skip, catchUp: Milliseconds = .zero, paused: Bool = false
    ) {
        self.name = name
        self.every = every
        self.cron = cron
        self.jitter = jitter
        self.job = job
        self.overlap = overlap
        self.catchUp = catchUp
        self.paused = paused
    }

    /// The catch-up window in force (`catchUp`, or its default).
    public var catchUpWindow: Milliseconds { catchUp == .zero ? ScheduleSpec.defaultCatchUp : catchUp }
    public static let defaultCatchUp: Milliseconds = 60_000
}

/// A schedule as SCHEDULE_GET and SCHEDULE_LIST show it.
public struct ScheduleInfo: Hashable, Sendable {
    public var spec: ScheduleSpec
    /// The next slot to fire; zero while the leader has yet to work it out (just created, changed or
    /// resumed), `Timestamp.never` when the expression matches no later time.
    public var nextSlot: Timestamp
    /// The latest slot settled (fired, skipped or missed); zero before the first.
    public var lastSlot: Timestamp
    /// The cluster's time of the latest job a slot or a trigger added; zero before the first.
    public var lastFireAt: Timestamp
    /// That job; zero before the first.
    public var lastJob: JobID
    /// Slots that added their job.
    public var fires: UInt64
    /// Slots the overlap policy skipped.
    public var skips: UInt64
    /// Slots older than the catch-up window when the cluster could fire them.
    public var misses: UInt64
    public var createdAt: Timestamp

    public init(
        spec: ScheduleSpec, nextSlot: Timestamp, lastSlot: Timestamp, lastFireAt: Timestamp, lastJob: JobID,
        fires: UInt64, skips: UInt64, misses: UInt64, createdAt: Timestamp
    ) {
        self.spec = spec
        self.nextSlot = nextSlot
        self.lastSlot = lastSlot
        self.lastFireAt = lastFireAt
        self.lastJob = lastJob
        self.fires = fires
        self.skips = skips
        self.misses = misses
        self.createdAt = createdAt
    }
}

extension Timestamp {
    /// No such time: a slot that never comes.
    public static let never = Timestamp(milliseconds: .max)
}

extension ScheduleSpec {
    /// `name:str every_ms:u32 cron:str jitter_ms:u32 overlap:u8 catch_up_ms:u32 paused:u8
    /// type:str payload:bytes priority:i32 max_attempts:u16 timeout_ms:u32 backoff_ms:u32`.
    public func encode(into b: inout ByteBuffer) {
        b.writeStr(name)
        b.writeU32(every.rawValue)
        b.writeStr(cron)
        b.writeU32(jitter.rawValue)
        b.writeU8(overlap.rawValue)
        b.writeU32(catchUp.rawValue)
        b.writeU8(paused ? 1 : 0)
        b.writeStr(job.type)
        b.writeBytesField(job.payload)
        b.writeI32(job.priority)
        b.writeU16(job.maxAttempts)
        b.writeU32(job.timeout.rawValue)
        b.writeU32(job.backoff.rawValue)
    }

    public static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> ScheduleSpec {
        let name = try b.readStr("name")
        let every = Milliseconds(try b.readU32("every_ms"))
        let cron = try b.readStr("cron")
        let jitter = Milliseconds(try b.readU32("jitter_ms"))
        let rawOverlap = try b.readU8("overlap")
        guard let overlap = OverlapPolicy(rawValue: rawOverlap) else {
            throw ErrorReply(.invalidArgument, "unknown overlap policy \(rawOverlap)")
        }
        let catchUp = Milliseconds(try b.readU32("catch_up_ms"))
        let rawPaused = try b.readU8("paused")
        guard rawPaused <= 1 else { throw ErrorReply(.invalidArgument, "paused is \(rawPaused); it must be 0 or 1") }
        let paused = rawPaused == 1
        let job = JobSpec(
            type: try b.readStr("type"), payload: try b.readBytes("payload"), priority: try b.readI32("priority"),
            maxAttempts: try b.readU16("max_attempts"), timeout: Milliseconds(try b.readU32("timeout_ms")),
            backoff: Milliseconds(try b.readU32("backoff_ms")))
        return ScheduleSpec(
            name: name, every: every, cron: cron, jitter: jitter, job: job, overlap: overlap, catchUp: catchUp, paused: paused)
    }
}

extension ScheduleInfo {
    /// The spec, then `next_slot:u64 last_slot:u64 last_fire_at:u64 last_job:u64 fires:u64 skips:u64
    /// misses:u64 created_at:u64`.
    public func encode(into b: inout ByteBuffer) {
        spec.encode(into: &b)
        b.writeU64(nextSlot.milliseconds)
        b.writeU64(lastSlot.milliseconds)
        b.writeU64(lastFireAt.milliseconds)
        b.writeU64(lastJob.rawValue)
        b.writeU64(fires)
        b.writeU64(skips)
        b.writeU64(misses)
        b.writeU64(createdAt.milliseconds)
    }

    public static func decode(from b: inout ByteBuffer) throws(ErrorReply) -> ScheduleInfo {
        ScheduleInfo(
            spec: try ScheduleSpec.decode(from: &b), nextSlot: Timestamp(milliseconds: try b.readU64("next_slot")),
            lastSlot: Timestamp(milliseconds: try b.readU64("last_slot")),
            lastFireAt: Timestamp(milliseconds: try b.readU64("last_fire_at")), lastJob: JobID(try b.readU64("last_job")),
            fires: try b.readU64("fires"), skips: try b.readU64("skips"), misses: try b.readU64("misses"),
            createdAt: Timestamp(milliseconds: try b.readU64("created_at")))
    }
}
