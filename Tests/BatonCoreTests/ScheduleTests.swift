import BatonProtocol
import NIOCore
import Testing

@testable import BatonCore

/// Schedules in the state machine (issue 22): records put, changed, paused and deleted by commands,
/// and slots settled only by the leader's fire entries, each a compare-and-set on the schedule's
/// revision and next slot.
@Suite struct ScheduleTests {
    static let every: Milliseconds = 1_000

    func spec(_ name: String = "scan", overlap: OverlapPolicy = .allow, jitter: Milliseconds = .zero) -> ScheduleSpec {
        ScheduleSpec(name: name, every: Self.every, jitter: jitter, job: JobSpec(type: "scan", payload: [1]), overlap: overlap)
    }

    func info(_ h: Harness, _ name: String = "scan") -> ScheduleInfo? {
        guard case .schedule(let info) = h.query(.getSchedule(name: name)) else { return nil }
        return info
    }

    func revision(_ h: Harness, _ name: String = "scan") -> UInt64 { h.machine.schedules[name]?.revision ?? 0 }

    /// Applies fires at the harness's time; returns the outcomes.
    @discardableResult
    func fire(_ h: inout Harness, _ fires: [ScheduleFire]) -> [ScheduleOutcome] {
        h.machine.apply(.fireSchedules(fires), at: h.time).schedules
    }

    /// Puts `spec` and applies the leader's plan: the next slot is the first multiple of the interval after now.
    func planned(_ spec: ScheduleSpec, _ h: inout Harness) -> Timestamp {
        #expect(h.run(.putSchedule(spec)) == .schedulePut(created: true))
        let first = Timestamp(milliseconds: (h.time.milliseconds / 1000 + 1) * 1000)
        fire(&h, [ScheduleFire(name: spec.name, revision: revision(h, spec.name), slot: .zero, next: first)])
        #expect(info(h, spec.name)?.nextSlot == first)
        return first
    }

    func jobs(_ h: Harness) -> [JobInfo] {
        guard case .jobs(let jobs, _) = h.query(.listJobs(JobFilter(type: "scan"))) else { return [] }
        return jobs
    }

    @Test func aPutIsIdempotentAndAChangeOfTimingStartsANewRevision() {
        var h = Harness()
        #expect(h.run(.putSchedule(spec())) == .schedulePut(created: true))
        let first = revision(h)
        #expect(h.run(.putSchedule(spec())) == .schedulePut(created: false))
        #expect(revision(h) == first)
        var other = spec()
        other.job.priority = 5
        #expect(h.run(.putSchedule(other)) == .schedulePut(created: false))
        #expect(revision(h) == first)  // the job changed, not the slots
        other.every = 2_000
        #expect(h.run(.putSchedule(other)) == .schedulePut(created: false))
        #expect(revision(h) > first)
        #expect(info(h)?.spec == other)
        #expect(info(h)?.nextSlot == .zero)
        guard case .schedules(let all) = h.query(.listSchedules(after: "", limit: 0)) else { Issue.record("no list"); return }
        #expect(all.map(\.spec.name) == ["scan"])
    }

    @Test func badSpecsAreRefusedAndNothingIsHeld() {
        var h = Harness()
        var both = spec()
        both.cron = "* * * * *"
        var neither = spec()
        neither.every = .zero
        var short = spec()
        short.every = 999
        var delayed = spec()
        delayed.job.delay = 10
        var keyed = spec()
        keyed.job.uniqueKey = "k"
        var jittery = spec()
        jittery.jitter = 3_600_001
        var unnamed = spec()
        unnamed.name = ""
        var untyped = spec()
        untyped.job.type = ""
        var longWindow = spec()
        longWindow.catchUp = 604_800_001
        for bad in [both, neither, short, delayed, keyed, jittery, unnamed, untyped, longWindow] {
            #expect(errorCode(h.run(.putSchedule(bad))) == .invalidArgument, "\(bad)")
        }
        #expect(h.machine.schedules.isEmpty)
        for command: Command in [.deleteSchedule(name: "x"), .pauseSchedule(name: "x"), .resumeSchedule(name: "x"), .triggerSchedule(name: "x")] {
            #expect(errorCode(h.run(command)) == .invalidArgument)
        }
    }

    @Test func aSlotFiresOnceHoweverOftenItsEntryIsApplied() {
        var h = Harness()
        let slot = planned(spec(), &h)
        let entry = ScheduleFire(name: "scan", revision: revision(h), slot: slot, next: slot.adding(Self.every))
        // Whether its time came is the leader's word, on the calendar clock, which the cluster's clock
        // here may stand behind after outages (issue 36): a member applies the fire as it comes.
        let outcomes = fire(&h, [entry])
        guard case .fired(let id)? = outcomes.first?.kind else { Issue.record("\(outcomes)"); return }
        #expect(h.job(id)?.uniqueKey == "schedule:scan:\(slot.milliseconds)")
        // Again, retried, replayed: nothing.
        #expect(fire(&h, [entry, entry]).isEmpty)
        h.advance(5_000)
        #expect(fire(&h, [entry]).isEmpty)
        #expect(info(h)?.fires == 1)
        #expect(info(h)?.lastSlot == slot)
        #expect(info(h)?.lastJob == id)
        #expect(jobs(h).count == 1)
    }

    @Test func aFireWorkedOutBeforeAChangeDoesNothingAfterIt() {
        var h = Harness()
        let slot = planned(spec(), &h)
        let stale = ScheduleFire(name: "scan", revision: revision(h), slot: slot, next: slot.adding(Self.every))
        var changed = spec()
        changed.every = 5_000
        _ = h.run(.putSchedule(changed))
        h.advance(10_000)
        #expect(fire(&h, [stale]).isEmpty)
        #expect(jobs(h).isEmpty)
        _ = h.run(.deleteSchedule(name: "scan"))
        #expect(info(h) == nil)
    }

    @Test func missedSlotsAreCountedAndAddNoJob() {
        var h = Harness()
        let slot = planned(spec(), &h)
        h.advance(100_000)
        let after = slot.adding(Milliseconds(5 * Self.every.rawValue))
        let outcomes = fire(&h, [ScheduleFire(name: "scan", revision: revision(h), slot: slot, missed: 5, next: after)])
        #expect(outcomes.map(\.kind) == [.missed(5)])
        #expect(info(h)?.misses == 5)
        #expect(info(h)?.nextSlot == after)
        #expect(jobs(h).isEmpty)
    }

    /// Fires `count` slots in a row, one per interval; returns the outcomes.
    func fireSlots(_ count: Int, from first: Timestamp, _ h: inout Harness) -> [ScheduleOutcome.Kind] {
        var kinds: [ScheduleOutcome.Kind] = []
        var slot = first
        for _ in 0..<count {
            h.advance(slot.milliseconds > h.time.milliseconds ? slot.milliseconds - h.time.milliseconds : 0)
            let next = slot.adding(Self.every)
            kinds += fire(&h, [ScheduleFire(name: "scan", revision: revision(h), slot: slot, next: next)]).map(\.kind)
            slot = next
        }
        return kinds
    }

    @Test func overlapSkipAddsNoJobWhileThePreviousIsUnfinished() {
        var h = Harness()
        let first = planned(spec(overlap: .skip), &h)
        let kinds = fireSlots(3, from: first, &h)
        #expect(kinds.count == 3)
        #expect(kinds.dropFirst().allSatisfy { $0 == .skipped })
        #expect(info(h)?.skips == 2)
        #expect(jobs(h).count == 1)
        // Once it is done, the next slot fires.
        guard let job = h.claim(["scan"]) else { Issue.record("no job"); return }
        #expect(h.run(.completeJob(job.id, token: job.token, result: [])) == .jobCompleted)
        let next = fireSlots(1, from: first.adding(Milliseconds(3 * Self.every.rawValue)), &h)
        guard case .fired? = next.first else { Issue.record("\(next)"); return }
    }

    @Test func overlapAllowAddsEverySlotsJob() {
        var h = Harness()
        let kinds = fireSlots(3, from: planned(spec(overlap: .allow), &h), &h)
        #expect(kinds.allSatisfy { if case .fired = $0 { true } else { false } })
        #expect(jobs(h).count == 3)
    }

    @Test func overlapBufferOneAddsOneWaitingSlotWhenThePreviousJobEnds() {
        var h = Harness()
        let kinds = fireSlots(3, from: planned(spec(overlap: .bufferOne), &h), &h)
        #expect(kinds.count == 3)
        #expect(kinds[1] == .buffered)
        #expect(kinds[2] == .skipped)
        #expect(jobs(h).count == 1)
        guard let job = h.claim(["scan"]) else { Issue.record("no job"); return }
        // The job dies (one attempt): the waiting slot adds its job then.
        #expect(h.run(.deleteJob(job.id)) == .jobDeleted)
        #expect(jobs(h).count == 1)
        #expect(info(h)?.fires == 2)
        #expect(h.machine.bufferedSlots.isEmpty)
    }

    @Test func aPausedScheduleFiresNothingAndResumesAfterNow() {
        var h = Harness()
        let slot = planned(spec(), &h)
        let rev = revision(h)
        #expect(h.run(.pauseSchedule(name: "scan")) == .scheduleUpdated(.schedulePause))
        #expect(info(h)?.spec.paused == true)
        h.advance(10_000)
        #expect(fire(&h, [ScheduleFire(name: "scan", revision: rev, slot: slot, next: slot.adding(Self.every))]).isEmpty)
        #expect(h.machine.nextScheduleTime() == nil)
        #expect(h.run(.resumeSchedule(name: "scan")) == .scheduleUpdated(.scheduleResume))
        #expect(info(h)?.nextSlot == .zero)
        #expect(h.machine.schedules["scan"]?.planFrom == h.time)
        #expect(h.machine.nextScheduleTime() == h.time)
        #expect(h.run(.resumeSchedule(name: "scan")) == .scheduleUpdated(.scheduleResume))  // resumed already: fine
    }

    @Test func aTriggerAddsTheJobNowWhateverTheOverlap() {
        var h = Harness()
        _ = planned(spec(overlap: .skip), &h)
        guard case .scheduleTriggered(let a) = h.run(.triggerSchedule(name: "scan")),
            case .scheduleTriggered(let b) = h.run(.triggerSchedule(name: "scan"))
        else { Issue.record("no trigger"); return }
        #expect(a != b || h.time == h.time)
        #expect(info(h)?.lastJob != JobID(0))
        #expect(info(h)?.fires == 0)
    }

    @Test func jitterIsTheSameOnEveryMemberAndBelowTheBound() {
        let m = StateMachine()
        let s = spec(jitter: 500)
        var seen = Set<UInt32>()
        for k in 0..<200 {
            let slot = Timestamp(milliseconds: 1_700_000_000_000 + UInt64(k) * 1000)
            let d = m.jitter(s, slot)
            #expect(d < 500)
            #expect(StateMachine().jitter(s, slot) == d)
            seen.insert(d.rawValue)
        }
        #expect(seen.count > 50)  // spread, not one value
    }

    @Test func theLeadersQueueHandsOutDueSchedulesOnce() {
        var h = Harness()
        _ = h.run(.putSchedule(spec("a")))
        _ = h.run(.putSchedule(spec("b")))
        #expect(h.machine.nextScheduleTime() == h.time)
        let due = h.machine.takeDueSchedules(at: h.time, limit: 10)
        #expect(due.map(\.name).sorted() == ["a", "b"])
        #expect(due.allSatisfy { $0.slot == .zero && $0.planFrom == h.time })
        #expect(h.machine.takeDueSchedules(at: h.time, limit: 10).isEmpty)
        // A new leader rebuilds it from the records.
        h.machine.rebuildScheduleQueue()
        #expect(h.machine.takeDueSchedules(at: h.time, limit: 1).count == 1)
    }

    @Test func schedulesSurviveASnapshotAndAFireEntryItsCodec() throws {
        var h = Harness()
        let slot = planned(spec(overlap: .bufferOne, jitter: 100), &h)
        _ = fireSlots(2, from: slot, &h)
        _ = planned(spec("other"), &h)
        _ = h.run(.pauseSchedule(name: "other"))
        let bytes = h.machine.snapshot()
        var restored = try StateMachine(restoring: bytes)
        #expect(restored.snapshot() == bytes)
        #expect(restored.schedules == h.machine.schedules)
        #expect(restored.bufferedSlots == h.machine.bufferedSlots)
        #expect(restored.lastScheduleRevision == h.machine.lastScheduleRevision)
        #expect(restored.nextScheduleTime() == h.machine.nextScheduleTime())
        // A member of the build before reads a snapshot without them.
        let old = try StateMachine(restoring: h.machine.snapshot(version: 3))
        #expect(old.schedules.isEmpty)

        let entry = TimedInput(
            .fireSchedules([
                ScheduleFire(name: "scan", revision: 7, slot: slot, missed: 3, next: .never),
                ScheduleFire(name: "ü", revision: 1, slot: .zero, next: slot),
            ]), at: h.time)
        #expect(try TimedInput.decode(entry.encode()) == entry)
        var cut = entry.encode()
        cut.removeLast()
        #expect(throws: SnapshotError.self) { try TimedInput.decode(cut) }
        var lying = TimedInput(.fireSchedules([]), at: h.time).encode()
        lying[12] = 0xFF  // a count of fires far beyond the entry's bytes
        #expect(throws: SnapshotError.self) { try TimedInput.decode(lying) }
    }

    @Test func theScheduleQuotaRefusesOneMore() {
        var c = StateMachine.Configuration()
        c.maxSchedules = 2
        var h = Harness(c)
        _ = h.run(.putSchedule(spec("a")))
        _ = h.run(.putSchedule(spec("b")))
        #expect(errorCode(h.run(.putSchedule(spec("c")))) == .quotaExceeded)
        #expect(h.run(.putSchedule(spec("a"))) == .schedulePut(created: false))  // a change is not one more
    }
}

extension AuthTests {
    @Test func aScheduleNeedsJobAdminOnItsTypeAndReadingItJobRead() {
        var (m, root) = bootstrapped()
        let ops = user("ops", ["job:admin,read:scan*"], in: &m, by: root)
        let reader = user("reader", ["job:read:scan"], in: &m, by: root)
        let scan = ScheduleSpec(name: "s", every: 1000, job: JobSpec(type: "scan"))
        var other = scan
        other.job.type = "billing"
        #expect(run(&m, .putSchedule(scan), by: ops) == .schedulePut(created: true))
        #expect(errorCode(run(&m, .putSchedule(other), by: ops)) == .permissionDenied)
        #expect(errorCode(run(&m, .putSchedule(scan), by: reader)) == .permissionDenied)
        #expect(errorCode(run(&m, .triggerSchedule(name: "s"), by: reader)) == .permissionDenied)
        #expect(errorCode(run(&m, .deleteSchedule(name: "s"), by: reader)) == .permissionDenied)
        guard case .schedule(let info) = m.query(.getSchedule(name: "s"), by: reader) else { Issue.record("refused"); return }
        #expect(info?.spec == scan)
        #expect(errorCode(m.query(.listSchedules(after: "", limit: 0), by: reader)) == .permissionDenied)  // needs job:read:*
        // Moving a schedule to a type needs admin on the type it leaves too.
        #expect(run(&m, .putSchedule(other), by: root) == .schedulePut(created: false))
        var back = other
        back.job.type = "scan"
        #expect(errorCode(run(&m, .putSchedule(back), by: ops)) == .permissionDenied)
    }
}
