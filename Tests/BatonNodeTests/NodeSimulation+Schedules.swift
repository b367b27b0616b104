import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// Schedules: the put, and the check that every slot was settled once, on the calendar.
extension NodeSimulation {
    // MARK: - Schedules

    /// Sends the schedule's put to a leader every 50 ms until one holds it (a put is idempotent).
    mutating func putSchedule() {
        guard let spec = options.schedule, now % 50 == 0,
            let leader = hosts.indices.first(where: { runs($0) && hosts[$0].node.isLeader }),
            case .schedule(nil) = hosts[leader].node.machine.query(.getSchedule(name: spec.name))
        else { return }
        nextRoute += 1
        step(leader, .command(RouteID(nextRoute), ClientID(9_999), SequenceNumber(0), .putSchedule(spec)))
    }

    /// Every slot from the first to the last settled was fired once or counted missed, none twice,
    /// and each was judged on the calendar (issue 36): a fire was proposed no earlier than its slot's
    /// real time and at most the catch-up window after it, a miss only when the slot was older than
    /// the window, each give or take the hosts' wall-clock errors. (The cluster's clock, which the
    /// jobs' `createdAt` is on, stops while no leader serves, so it cannot tell lateness.)
    mutating func checkSchedule(_ spec: ScheduleSpec, on machine: StateMachine) {
        guard case .schedule(let found) = machine.query(.getSchedule(name: spec.name)), let info = found else {
            fail("schedule \(spec.name) missing at the end")
            return
        }
        guard case .jobs(let jobs, _) = machine.query(.listJobs(JobFilter(type: spec.job.type))) else {
            fail("listing the schedule's jobs did not answer with jobs")
            return
        }
        let every = UInt64(spec.every.rawValue)
        let window = Int(spec.catchUpWindow.rawValue)
        let error = 2 * options.wallClockError  // an offset and a step, either way
        // The committed fire entries in log order, with when (real time) their leader proposed them.
        var firstFire: [UInt64: Int] = [:]
        var firstMiss: [UInt64: (proposed: Int, count: UInt32)] = [:]
        for index in appliedEntries.keys.sorted() {
            let entry = appliedEntries[index]!
            guard let timed = try? TimedInput.decode(entry.data), case .fireSchedules(let fires) = timed.input,
                let proposed = proposedAt[index]?[entry.term]
            else { continue }
            for fire in fires where fire.name == spec.name && fire.slot != .zero {
                let slot = fire.slot.milliseconds
                if fire.missed == 0 {
                    if firstFire[slot] == nil { firstFire[slot] = proposed }
                } else if firstMiss[slot] == nil {
                    firstMiss[slot] = (proposed, fire.missed)
                }
            }
        }
        var slots = Set<UInt64>()
        for job in jobs {
            guard let slot = job.uniqueKey.split(separator: ":").last.flatMap({ UInt64($0) }) else {
                fail("job \(job.id) of the schedule has unique key \(job.uniqueKey)")
                continue
            }
            if !slots.insert(slot).inserted { fail("slot \(slot) added two jobs") }
            if slot % every != 0 { fail("slot \(slot) is not a multiple of \(every)") }
            guard let proposed = firstFire[slot] else {
                fail("slot \(slot) added a job, but no committed fire names it")
                continue
            }
            let lateness = Int(Self.epoch) + proposed - Int(slot)
            if lateness < -error { fail("slot \(slot) fired \(-lateness) ms early (real time)") }
            if lateness > window + error {
                fail("slot \(slot) fired \(lateness) ms after its time (real time), later than its window of \(window) ms")
            }
        }
        for (slot, miss) in firstMiss where miss.count > 0 {
            let lateness = Int(Self.epoch) + miss.proposed - Int(slot)
            if lateness <= window - error { fail("slot \(slot) counted missed only \(lateness) ms after its time (window \(window) ms)") }
        }
        if info.fires != UInt64(jobs.count) { fail("\(info.fires) fires counted, \(jobs.count) jobs added: a slot fired twice") }
        guard info.nextSlot != .zero, info.nextSlot != .never, let start = (Array(firstFire.keys) + Array(firstMiss.keys)).min() else {
            if info.misses == 0 && info.fires == 0 { fail("the schedule never fired: next slot \(info.nextSlot)") }
            return
        }
        let expected = (info.nextSlot.milliseconds - start) / every
        if info.fires + info.misses != expected {
            fail("\(info.fires) fires and \(info.misses) misses for the \(expected) slots from \(start) to \(info.nextSlot)")
        }
        if Int(info.nextSlot.milliseconds) + 2 * Int(every) + error < Int(realTime) {
            fail("the schedule stands still: next slot \(info.nextSlot), real time \(realTime)")
        }
        scheduleFires += Int(info.fires)
        scheduleMisses += Int(info.misses)
    }


    mutating func fail(_ text: String) {
        failures.append("seed \(seed), \(now) ms: \(text)")
    }

    /// Folds an event into `traceHash`, by which `aSeedReplaysExactly` tells two runs apart.
    mutating func trace(_ kind: TraceKind, _ value: UInt64) {
        for v in [kind.rawValue, value, UInt64(now)] {
            traceHash = (traceHash ^ v) &* 0x100_0000_01b3
        }
    }
}
