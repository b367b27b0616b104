import BatonProtocol
import BatonRaft
import Testing

@testable import BatonCore

/// Cron expressions and the next slot they name (issue 22's groundwork), against a table of known
/// cases: month ends, leap days, steps, lists and ranges, day of month together with day of week.
@Suite struct CronScheduleTests {
    /// A UTC time as a timestamp.
    static func at(_ y: Int64, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ ms: UInt64 = 0) -> Timestamp {
        let day = CronSchedule.days(fromCivil: y, mo, d)
        return Timestamp(milliseconds: UInt64(day * 86_400_000) + UInt64(h * 3_600_000 + mi * 60_000) + ms)
    }

    static let cases: [(expression: String, after: Timestamp, next: Timestamp?)] = [
        ("*/15 * * * *", at(2026, 12, 4, 8, 30), at(2026, 12, 4, 8, 45)),  // strictly after
        ("*/15 * * * *", at(2026, 12, 4, 8, 44, 59_999), at(2026, 12, 4, 8, 45)),
        ("0 0 31 * *", at(2026, 4, 15), at(2026, 5, 31)),  // April has no 31st
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29)),  // the next leap day
        ("0 12 * * mon-fri", at(2026, 12, 5, 13), at(2026, 12, 7, 12)),  // Saturday to Monday
        ("0 0 13 * 5", at(2026, 12, 4), at(2026, 12, 11)),  // both day fields: either matches (a Friday first)
        ("0 0 13 * 5", at(2026, 12, 11), at(2026, 12, 13)),  // (then the 13th, a Sunday)
        ("30 2 1,15 * *", at(2026, 12, 1, 3), at(2026, 12, 15, 2, 30)),
        ("@hourly", at(2026, 12, 4, 8), at(2026, 12, 4, 9)),
        ("@yearly", at(2026, 6, 1), at(2027, 1, 1)),
        ("@weekly", at(2026, 12, 4), at(2026, 12, 6)),  // Sunday midnight
        ("0 9-17/4 * * *", at(2026, 12, 4, 10), at(2026, 12, 4, 13)),
        ("59 23 31 12 *", at(2026, 12, 31, 23, 59), at(2027, 12, 31, 23, 59)),
        ("0 0 * * 7", at(2026, 12, 4), at(2026, 12, 6)),  // 7 is Sunday too
        ("0 0 1 jan,jul *", at(2026, 2, 1), at(2026, 7, 1)),
        ("5/20 * * * *", at(2026, 12, 4, 8, 6), at(2026, 12, 4, 8, 25)),  // from 5 on, every 20
        ("0 0 29 2 1", at(2026, 12, 4), at(2027, 2, 1)),  // in February: a Monday comes before any 29th
        ("0 0 30 2 *", at(2026, 12, 4), nil),  // no such day
    ]

    @Test(arguments: cases.indices)
    func theNextSlotIsKnown(index: Int) throws {
        let c = Self.cases[index]
        let schedule = try CronSchedule(parsing: c.expression)
        #expect(schedule.next(after: c.after) == c.next, "\(c.expression) after \(c.after)")
    }

    @Test func badExpressionsAreRefusedByName() {
        for (text, says) in [
            ("* * * *", "4 fields"), ("60 * * * *", "not a minute"), ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"), ("@every5m", "unknown shorthand"), ("* * * foo *", "not a month"),
            ("* * 0 * *", "not a day of month"),
        ] {
            do {
                _ = try CronSchedule(parsing: text)
                Issue.record("'\(text)' parsed")
            } catch {
                #expect(error.code == .invalidArgument && error.message.contains(says), "\(text): \(error.message)")
            }
        }
    }

    /// Every slot is on a whole minute, after the time asked, matches every field, and no matching
    /// minute lies between: checked minute by minute over a seeded sample.
    @Test func slotsMatchAndNoneIsSkipped() throws {
        var rng = SplitMix64(seed: 20_261_204)
        let expressions = ["*/7 3-5 * * *", "0 0 1,15 * mon", "15 */6 * feb-apr *", "0 0 29 2 *", "*/30 * 31 * *"]
        for text in expressions {
            let schedule = try CronSchedule(parsing: text)
            for _ in 0..<20 {
                let start = Timestamp(milliseconds: UInt64.random(in: 1_700_000_000_000...1_900_000_000_000, using: &rng))
                guard let next = schedule.next(after: start) else { Issue.record("\(text): none after \(start)"); continue }
                #expect(next > start && next.milliseconds % 60_000 == 0)
                #expect(Self.matches(schedule, next), "\(text): \(next) does not match")
                // No earlier minute matches (bounded: look back at most 40 days).
                var minute = next.milliseconds / 60_000 - 1
                while minute * 60_000 > start.milliseconds && next.milliseconds / 60_000 - minute < 40 * 1440 {
                    #expect(!Self.matches(schedule, Timestamp(milliseconds: minute * 60_000)), "\(text): skipped minute \(minute)")
                    minute -= 1
                }
            }
        }
    }

    static func matches(_ s: CronSchedule, _ t: Timestamp) -> Bool {
        let minute = Int64(t.milliseconds / 60_000)
        let day = minute / 1440
        let (_, m, d) = CronSchedule.civil(fromDays: day)
        return s.months & (1 << UInt16(m)) != 0 && s.matchesDay(d, weekday: Int((day + 4) % 7))
            && s.hours & (1 << UInt32((minute % 1440) / 60)) != 0 && s.minutes & (1 << UInt64(minute % 60)) != 0
    }

    @Test func datesRoundTrip() {
        for day in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let (y, m, d) = CronSchedule.civil(fromDays: day)
            #expect(CronSchedule.days(fromCivil: y, m, d) == day)
        }
        #expect(CronSchedule.civil(fromDays: 0) == (1970, 1, 1))
        #expect(CronSchedule.days(fromCivil: 2000, 3, 1) == 11_017)
    }
}
