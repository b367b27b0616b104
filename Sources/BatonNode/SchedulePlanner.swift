import BatonCore
import BatonProtocol

/// How the leader settles a due schedule: the fire entries it proposes (see `ScheduleFire`). Only the
/// leader works out slots; members apply what the entries say.
///
/// A slot is fired when it is at most the catch-up window old at the leader's time, and counted
/// missed otherwise. Slots that came while no leader could fire them are settled in order, each in
/// its own fire, so a slot inside the window is fired late and never skipped.
package enum SchedulePlanner {
    /// Fire entries for one schedule proposed together: a compare-and-set chain, each one's `next`
    /// the following one's `slot`.
    package static let maxChain = 64

    /// The fire entries that settle every slot of `due` up to `now` (at most `maxChain`). A schedule
    /// with no next slot yet starts from its first slot after `planFrom`, a time on the cluster's
    /// clock, moved by `planFromShift` onto the clock `now` is read on.
    package static func fires(for due: DueSchedule, at now: Timestamp, planFromShift: UInt64 = 0) -> [ScheduleFire] {
        let timing = Timing(due.spec)
        var fires: [ScheduleFire] = []
        var slot = due.slot
        if slot == .zero {
            slot = timing.next(after: Timestamp(milliseconds: due.planFrom.milliseconds &+ planFromShift))
            fires.append(ScheduleFire(name: due.name, revision: due.revision, slot: .zero, next: slot))
        }
        let window = UInt64(due.spec.catchUpWindow.rawValue)
        while slot != .never, slot <= now, fires.count < maxChain {
            if now.milliseconds - slot.milliseconds > window {
                let (count, after) = timing.missed(from: slot, before: Timestamp(milliseconds: now.milliseconds - window))
                fires.append(ScheduleFire(name: due.name, revision: due.revision, slot: slot, missed: count, next: after))
                slot = after
            } else {
                let next = timing.next(after: slot)
                fires.append(ScheduleFire(name: due.name, revision: due.revision, slot: slot, next: next))
                slot = next
            }
        }
        return fires
    }

    /// A schedule's slots: multiples of an interval since the epoch, or a cron expression's minutes.
    package struct Timing {
        var every: UInt64
        var cron: CronSchedule?

        package init(_ spec: ScheduleSpec) {
            every = UInt64(spec.every.rawValue)
            // An expression the leader refused never reaches the log; one that did (an older build's)
            // and does not parse has no slots.
            cron = spec.cron.isEmpty ? nil : try? CronSchedule(parsing: spec.cron)
        }

        /// The first slot strictly after `time` (`.never`: none).
        package func next(after time: Timestamp) -> Timestamp {
            if every > 0 {
                let (slot, overflow) = (time.milliseconds / every + 1).multipliedReportingOverflow(by: every)
                return overflow ? .never : Timestamp(milliseconds: slot)
            }
            return cron?.next(after: time) ?? .never
        }

        /// How many slots from `slot` (itself one) come before `cutoff`, and the first slot after them.
        /// Counts at most `UInt32.max` (an interval) or 100,000 (cron) slots at once.
        func missed(from slot: Timestamp, before cutoff: Timestamp) -> (UInt32, Timestamp) {
            if every > 0 {
                let count = min((cutoff.milliseconds - slot.milliseconds + every - 1) / every, UInt64(UInt32.max))
                return (UInt32(count), Timestamp(milliseconds: slot.milliseconds + count * every))
            }
            var count: UInt32 = 0
            var s = slot
            while s != .never, s < cutoff, count < 100_000 {
                count += 1
                s = next(after: s)
            }
            return (count, s)
        }
    }
}
