@testable import BatonCore
import BatonProtocol
import BatonRaft
import Testing

@testable import BatonNode

/// The leader's side of schedules: which fire entries it proposes for a due schedule, and, with
/// the state machine, that every slot ends up fired once or counted missed, whatever the order,
/// repetition or delay of the entries.
@Suite struct SchedulePlannerTests {
    let t0 = Timestamp(milliseconds: 1_700_000_000_500)

    func due(_ spec: ScheduleSpec, slot: Timestamp, planFrom: Timestamp, revision: UInt64 = 1) -> DueSchedule {
        DueSchedule(name: spec.name, revision: revision, spec: spec, slot: slot, planFrom: planFrom)
    }

    func every(_ ms: UInt32, catchUp: Milliseconds = .zero) -> ScheduleSpec {
        ScheduleSpec(name: "s", every: Milliseconds(ms), job: JobSpec(type: "t"), catchUp: catchUp)
    }

    @Test func theFirstSlotIsTheFirstMultipleAfterThePut() {
        let fires = SchedulePlanner.fires(for: due(every(1000), slot: .zero, planFrom: t0), at: t0)
        #expect(fires == [ScheduleFire(name: "s", revision: 1, slot: .zero, next: Timestamp(milliseconds: 1_700_000_001_000))])
        // A put exactly on a slot starts at the next one: the slot is not "after" the put.
        let onSlot = Timestamp(milliseconds: 1_700_000_001_000)
        #expect(SchedulePlanner.fires(for: due(every(1000), slot: .zero, planFrom: onSlot), at: onSlot).first?.next
            == Timestamp(milliseconds: 1_700_000_002_000))
        let cron = ScheduleSpec(name: "s", cron: "30 4 * * *", job: JobSpec(type: "t"))
        // 2023-11-14 22:13:20 UTC → 2023-11-15 04:30 UTC.
        #expect(SchedulePlanner.fires(for: due(cron, slot: .zero, planFrom: t0), at: t0).first?.next
            == Timestamp(milliseconds: 1_700_022_600_000))
    }

    @Test func slotsInsideTheWindowAreFiredLateInOrder() {
        let first = Timestamp(milliseconds: 1_700_000_001_000)
        let now = first.adding(3_500)  // four slots due, the oldest 3.5 s old, inside the 60 s default
        let fires = SchedulePlanner.fires(for: due(every(1000), slot: first, planFrom: t0), at: now)
        #expect(fires.map(\.slot.milliseconds) == [1_700_000_001_000, 1_700_000_002_000, 1_700_000_003_000, 1_700_000_004_000])
        #expect(fires.allSatisfy { $0.missed == 0 && $0.next.milliseconds == $0.slot.milliseconds + 1000 })
    }

    @Test func slotsOlderThanTheWindowAreCountedMissedInOneEntry() {
        let first = Timestamp(milliseconds: 1_700_000_001_000)
        let now = first.adding(10_000)  // slots 1..11 due; window 3 s: slots older than now-3000 are missed
        let fires = SchedulePlanner.fires(for: due(every(1000, catchUp: 3_000), slot: first, planFrom: t0), at: now)
        #expect(fires.first == ScheduleFire(name: "s", revision: 1, slot: first, missed: 7, next: first.adding(7_000)))
        #expect(fires.dropFirst().map(\.slot) == [first.adding(7_000), first.adding(8_000), first.adding(9_000), first.adding(10_000)])
    }

    @Test func aLongChainIsCutAndContinuedLater() {
        let first = Timestamp(milliseconds: 1_700_000_001_000)
        let now = first.adding(3_000_000)  // 3,000 slots in a 1 h window
        let fires = SchedulePlanner.fires(for: due(every(1000, catchUp: 3_600_000), slot: first, planFrom: t0), at: now)
        #expect(fires.count == SchedulePlanner.maxChain)
        #expect(zip(fires, fires.dropFirst()).allSatisfy { $0.next == $1.slot })
    }

    @Test func anExpressionThatNoLongerParsesHasNoSlots() {
        let bad = ScheduleSpec(name: "s", cron: "not cron", job: JobSpec(type: "t"))
        #expect(SchedulePlanner.fires(for: due(bad, slot: .zero, planFrom: t0), at: t0).first?.next == .never)
    }

    /// A leader that proposes at random times, with outages longer and shorter than the window;
    /// its entries applied late, twice, or after the schedule changed. Every slot is fired once or
    /// counted missed, none twice, none early or outside the window, and a replica applying the
    /// same log reaches the same state.
    @Test(arguments: Array(UInt64(1)...UInt64(300)))
    func everySlotIsFiredOnceOrCountedMissed(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let policies: [OverlapPolicy] = [.allow, .skip, .bufferOne]
        let spec = ScheduleSpec(
            name: "s", every: Milliseconds(UInt32(1000 + rng.next() % 4000)), job: JobSpec(type: "t"),
            overlap: policies[Int(rng.next() % 3)], catchUp: Milliseconds(UInt32(rng.next() % 20_000)))
        var machine = StateMachine()
        var time = t0
        var log: [TimedInput] = []
        /// Each fired slot, once, with the time the leader worked its entry out.
        var fired: [UInt64: JobID] = [:]
        func apply(_ input: StateMachineInput, plannedAt: Timestamp) {
            let timed = TimedInput(input, at: time)
            log.append(timed)
            for outcome in machine.apply(timed.input, at: time).schedules {
                guard case .fired(let id) = outcome.kind else { continue }
                let slot = outcome.slot.milliseconds
                #expect(fired.updateValue(id, forKey: slot) == nil, "seed \(seed): slot \(slot) fired twice")
                #expect(slot <= time.milliseconds, "seed \(seed): slot \(slot) fired early, at \(time)")
                // Worked out inside the window (a slot waiting on bufferOne is added when the job before it ends).
                if case .fireSchedules = input {
                    #expect(plannedAt.milliseconds - slot <= UInt64(spec.catchUpWindow.rawValue), "seed \(seed): slot \(slot) fired late")
                }
            }
        }
        apply(.command(ClientID(1), SequenceNumber(1), .putSchedule(spec)), plannedAt: time)
        var held: [(StateMachineInput, Timestamp)] = []  // entries of a deposed leader, applied later
        for _ in 0..<200 {
            let gap = rng.next() % 10 == 0 ? rng.next() % 40_000 : rng.next() % 1_500
            time = time.adding(Milliseconds(UInt32(gap)))
            var entries: [(StateMachineInput, Timestamp)] = []
            for d in machine.takeDueSchedules(at: time, limit: 10) {
                let fires = SchedulePlanner.fires(for: d, at: time)
                if !fires.isEmpty { entries.append((.fireSchedules(fires), time)) }
            }
            switch rng.next() % 8 {
            case 0:  // a leader change: these entries are held back, the new leader starts from the records
                held += entries
                entries = []
                machine.rebuildScheduleQueue()
            case 1:  // a retried proposal
                entries += entries
            case 2:  // an old entry replayed
                if let old = log.randomElement(using: &rng), case .fireSchedules = old.input { entries.append((old.input, old.time)) }
            case 3:  // the held entries arrive now, late
                entries = held + entries
                held = []
            default:
                break
            }
            for (entry, plannedAt) in entries { apply(entry, plannedAt: plannedAt) }
            // The workers finish jobs now and then, so overlap policies see both cases.
            if rng.next() % 3 == 0 {
                let claim = StateMachineInput.command(ClientID(2), SequenceNumber(0), .claimJob(types: ["t"], worker: "w", wait: .zero))
                log.append(TimedInput(claim, at: time))
                if case .jobClaimed(let job?) = machine.apply(claim, at: time).reply {
                    apply(.command(ClientID(2), SequenceNumber(0), .completeJob(job.id, token: job.token, result: [])), plannedAt: time)
                }
            }
        }
        guard case .schedule(let found) = machine.query(.getSchedule(name: "s")), let info = found else {
            Issue.record("seed \(seed): the schedule is gone")
            return
        }
        let e = UInt64(spec.every.rawValue)
        let first = (info.createdAt.milliseconds / e + 1) * e
        let settled = (info.nextSlot.milliseconds - first) / e
        let buffered: UInt64 = machine.schedules["s"]!.buffered == .zero ? 0 : 1
        #expect(info.fires + info.skips + info.misses + buffered == settled, "seed \(seed): \(info)")
        #expect(UInt64(fired.count) == info.fires, "seed \(seed)")
        #expect(fired.keys.allSatisfy { $0 % e == 0 && $0 >= first && $0 < info.nextSlot.milliseconds })
        // A replica of the log: the same state.
        var replica = StateMachine()
        for timed in log { _ = replica.apply(timed.input, at: timed.time) }
        #expect(replica.snapshot() == machine.snapshot(), "seed \(seed)")
    }
}
