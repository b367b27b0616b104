import BatonProtocol
import HeapModule

extension StateMachine {
    // MARK: Commands

    mutating func putSchedule(_ spec: ScheduleSpec) -> Reply {
        if var record = schedules[spec.name] {
            if record.spec == spec { return .schedulePut(created: false) }  // idempotent, as BullMQ's upsert
            let timing = record.spec.every != spec.every || record.spec.cron != spec.cron || record.spec.paused != spec.paused
            record.spec = spec
            if timing {
                if record.buffered != .zero { bufferedSlots[record.lastJob] = nil }
                // Slots from now on, by the new timing; the counts and the last job stay.
                record.revision = nextScheduleRevision()
                record.planFrom = now
                record.nextSlot = .zero
                record.buffered = .zero
                queueSchedule(record)
            }
            schedules[spec.name] = record
            return .schedulePut(created: false)
        }
        if schedules.count >= configuration.maxSchedules {
            return .error(.quotaExceeded, "\(schedules.count) schedules are held, the most allowed (limits.maxSchedules)")
        }
        let record = ScheduleRecord(spec: spec, revision: nextScheduleRevision(), createdAt: now, planFrom: now)
        schedules[spec.name] = record
        queueSchedule(record)
        return .schedulePut(created: true)
    }

    mutating func deleteSchedule(_ name: String) -> Reply {
        guard let record = schedules.removeValue(forKey: name) else { return noSchedule(name) }
        if record.buffered != .zero { bufferedSlots[record.lastJob] = nil }
        return .scheduleUpdated(.scheduleDelete)
    }

    /// Pauses or resumes. A resumed schedule starts again with its first slot after now: the slots
    /// while it was paused are neither fired nor missed.
    mutating func setPaused(_ name: String, _ paused: Bool) -> Reply {
        let done = Reply.scheduleUpdated(paused ? .schedulePause : .scheduleResume)
        guard var record = schedules[name] else { return noSchedule(name) }
        if record.spec.paused == paused { return done }
        record.spec.paused = paused
        record.revision = nextScheduleRevision()
        record.nextSlot = .zero
        record.planFrom = now
        schedules[name] = record
        queueSchedule(record)
        return done
    }

    mutating func triggerSchedule(_ name: String) -> Reply {
        guard var record = schedules[name] else { return noSchedule(name) }
        var spec = record.spec.job
        spec.uniqueKey = "schedule:\(name):trigger:\(now.milliseconds)"
        let reply = addJob(spec)
        guard case .jobAdded(let id, _) = reply else { return reply }
        record.lastJob = id
        record.lastFireAt = now
        schedules[name] = record
        return .scheduleTriggered(id)
    }

    func noSchedule(_ name: String) -> Reply { .error(.invalidArgument, "no schedule '\(name)'") }

    mutating func nextScheduleRevision() -> UInt64 {
        lastScheduleRevision += 1
        return lastScheduleRevision
    }

    // MARK: Fire entries

    mutating func fireSchedules(_ fires: [ScheduleFire]) {
        for fire in fires { settle(fire) }
    }

    /// Applies one fire entry if it still holds (see `ScheduleFire`).
    mutating func settle(_ fire: ScheduleFire) {
        guard var record = schedules[fire.name], record.revision == fire.revision, record.nextSlot == fire.slot,
            !record.spec.paused
        else { return }
        if fire.slot == .zero {
            guard fire.next > record.planFrom else { return }
        } else {
            // Always forward. Whether the slot's time has come is the leader's word (on the calendar
            // clock, which the cluster's clock here may stand behind after outages: issue 36).
            guard fire.next > fire.slot else { return }
            if fire.missed > 0 {
                record.misses += UInt64(fire.missed)
                scheduleOutcomes.append(ScheduleOutcome(name: fire.name, slot: fire.slot, kind: .missed(fire.missed)))
            } else {
                fireSlot(fire.slot, of: &record)
            }
        }
        record.nextSlot = fire.next
        schedules[fire.name] = record
        queueSchedule(record)
    }

    /// One slot comes: its job is added, unless the overlap policy says otherwise.
    mutating func fireSlot(_ slot: Timestamp, of record: inout ScheduleRecord) {
        record.lastSlot = slot
        let previous = jobs[record.lastJob]
        let overlaps = previous.map { $0.state == .queued || $0.state == .running } ?? false
        if overlaps {
            switch record.spec.overlap {
            case .allow:
                break
            case .skip:
                record.skips += 1
                scheduleOutcomes.append(ScheduleOutcome(name: record.spec.name, slot: slot, kind: .skipped))
                return
            case .bufferOne:
                if record.buffered == .zero {
                    record.buffered = slot
                    bufferedSlots[record.lastJob] = record.spec.name
                    scheduleOutcomes.append(ScheduleOutcome(name: record.spec.name, slot: slot, kind: .buffered))
                } else {
                    record.skips += 1
                    scheduleOutcomes.append(ScheduleOutcome(name: record.spec.name, slot: slot, kind: .skipped))
                }
                return
            }
        }
        addSlotJob(slot, of: &record)
    }

    /// Adds the job of `slot`, under a unique key derived from it: even a slot fired twice by some
    /// future bug would add one job while the first is unfinished.
    mutating func addSlotJob(_ slot: Timestamp, of record: inout ScheduleRecord) {
        var spec = record.spec.job
        spec.uniqueKey = "schedule:\(record.spec.name):\(slot.milliseconds)"
        spec.delay = jitter(record.spec, slot)
        guard case .jobAdded(let id, _) = addJob(spec) else {
            record.skips += 1  // the job quota is full
            scheduleOutcomes.append(ScheduleOutcome(name: record.spec.name, slot: slot, kind: .skipped))
            return
        }
        record.fires += 1
        record.lastJob = id
        record.lastFireAt = now
        scheduleOutcomes.append(ScheduleOutcome(name: record.spec.name, slot: slot, kind: .fired(id)))
    }

    /// A delay below the schedule's jitter, the same on every member: `FNV1a` of the name and the slot.
    func jitter(_ spec: ScheduleSpec, _ slot: Timestamp) -> Milliseconds {
        guard spec.jitter > .zero else { return .zero }
        var h = FNV1a()
        h.add(spec.name.utf8)
        for shift in stride(from: 56, through: 0, by: -8) { h.add(UInt8(truncatingIfNeeded: slot.milliseconds >> UInt64(shift))) }
        return Milliseconds(UInt32(h.value % UInt64(spec.jitter.rawValue)))
    }

    /// A job ended (completed, dead or deleted): a slot that waited for it adds its job now.
    mutating func jobEnded(_ id: JobID) {
        guard !bufferedSlots.isEmpty, let name = bufferedSlots.removeValue(forKey: id), var record = schedules[name],
            record.lastJob == id, record.buffered != .zero
        else { return }
        let slot = record.buffered
        record.buffered = .zero
        addSlotJob(slot, of: &record)
        schedules[name] = record
    }

    // MARK: The queue of slots, for the leader

    mutating func queueSchedule(_ record: ScheduleRecord) {
        guard let time = record.dueAt else { return }
        scheduleQueue.insert(ScheduleDue(time: time, name: record.spec.name, revision: record.revision))
        // Followers never take from the queue: keep it as small as the schedules it serves.
        if scheduleQueue.count > 1024 && scheduleQueue.count > 2 * schedules.count { rebuildScheduleQueue() }
    }

    func isLive(_ due: ScheduleDue) -> Bool {
        guard let record = schedules[due.name] else { return false }
        return record.revision == due.revision && record.dueAt == due.time
    }

    /// Makes the queue again from the records: for a new leader, whose queue may lack what an
    /// earlier term took from it and never saw applied.
    public mutating func rebuildScheduleQueue() {
        scheduleQueue = Heap(schedules.values.compactMap { r in r.dueAt.map { ScheduleDue(time: $0, name: r.spec.name, revision: r.revision) } })
    }

    /// The latest slot any schedule fired: a new leader's calendar clock starts no earlier.
    public func latestFiredSlot() -> Timestamp {
        schedules.values.reduce(Timestamp.zero) { max($0, $1.lastSlot) }
    }

    /// When the leader next has a schedule to act on.
    public mutating func nextScheduleTime() -> Timestamp? {
        while let first = scheduleQueue.min, !isLive(first) { _ = scheduleQueue.popMin() }
        return scheduleQueue.min?.time
    }

    /// Takes out of the queue every schedule due by `time` (at most `limit`), for the leader to propose
    /// their fire entries. They come back into the queue when those are applied.
    public mutating func takeDueSchedules(at time: Timestamp, limit: Int) -> [DueSchedule] {
        var due: [DueSchedule] = []
        while due.count < limit, let first = scheduleQueue.min, first.time <= time {
            _ = scheduleQueue.popMin()
            guard isLive(first), let record = schedules[first.name] else { continue }
            due.append(
                DueSchedule(name: first.name, revision: record.revision, spec: record.spec, slot: record.nextSlot, planFrom: record.planFrom))
        }
        return due
    }

    // MARK: Queries

    /// Each schedule's slots fired, skipped and missed, by name (for metrics).
    public func scheduleCounts() -> [(name: String, fires: UInt64, skips: UInt64, misses: UInt64)] {
        schedules.keys.sorted().map { name in
            let r = schedules[name]!
            return (name, r.fires, r.skips, r.misses)
        }
    }

    func listSchedules(after: String, limit: Int) -> [ScheduleInfo] {
        var selection = SmallestSelection<String>(limit: limit)
        for name in schedules.keys where name > after { selection.offer(name) }
        return selection.sorted.map { schedules[$0]!.info }
    }

    func validate(_ spec: ScheduleSpec) -> ErrorReply? {
        if let e = checkName(spec.name, "schedule name") ?? checkName(spec.job.type, "type") { return e }
        switch (spec.every == .zero, spec.cron.isEmpty) {
        case (true, true): return ErrorReply(.invalidArgument, "a schedule needs an interval or a cron expression")
        case (false, false): return ErrorReply(.invalidArgument, "a schedule has an interval or a cron expression, not both")
        case (false, true):
            if spec.every < configuration.minScheduleInterval {
                return ErrorReply(.invalidArgument, "interval \(spec.every) is below the minimum of \(configuration.minScheduleInterval)")
            }
        case (true, false):
            if let e = checkLength(spec.cron, "cron expression") { return e }
        }
        if spec.jitter > configuration.maxScheduleJitter {
            return ErrorReply(.invalidArgument, "jitter \(spec.jitter) exceeds the maximum of \(configuration.maxScheduleJitter)")
        }
        if spec.catchUp > configuration.maxCatchUp {
            return ErrorReply(.invalidArgument, "catch-up window \(spec.catchUp) exceeds the maximum of \(configuration.maxCatchUp)")
        }
        if spec.job.delay != .zero || !spec.job.uniqueKey.isEmpty {
            return ErrorReply(.invalidArgument, "a schedule's job has no delay or unique key of its own: the schedule sets them (see jitter)")
        }
        // The job is checked as the client sent it: the unique key the schedule derives for each slot
        // (`schedule:<name>:<slot>`) is the node's own, not bound by the limit on client keys (issue 35:
        // a 227-byte name was refused by a 256-byte limit, and any name by a limit of 32 or less).
        return validate(.addJob(spec.job))
    }
}
