import BatonProtocol

/// A five-field cron expression, `minute hour day-of-month month day-of-week`, and the slots it
/// names, in UTC (issue 22). The groundwork of schedules in the cluster: the leader computes each
/// slot from it; replicas apply the fires the leader proposes and never compute cron themselves.
///
/// Each field is `*`, a number, a range `a-b`, any of these with a step `/n`, or a comma list of
/// them. Months take `jan`…`dec` and days of the week `sun`…`sat` (0 and 7 are both Sunday).
/// `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for
/// their usual expressions. As in Vixie cron, when both day fields are restricted (neither is
/// `*`), a day matches when **either** does; otherwise both must.
///
/// UTC only: a slot named in a time zone moves with that zone's rules, which differ between
/// versions of the time-zone database, and a cluster's members must agree on every slot.
public struct CronSchedule: Hashable, Sendable, CustomStringConvertible {
    /// Bit n set: minute n (0–59), hour n (0–23), day n (1–31), month n (1–12), weekday n (0–6).
    let minutes: UInt64
    let hours: UInt32
    let days: UInt32
    let months: UInt16
    let weekdays: UInt8
    let daysRestricted: Bool
    let weekdaysRestricted: Bool
    /// The expression as given.
    public let description: String

    public init(parsing text: String) throws(ErrorReply) {
        description = text
        let expanded: String
        switch text.trimmingCharacters() {
        case "@yearly", "@annually": expanded = "0 0 1 1 *"
        case "@monthly": expanded = "0 0 1 * *"
        case "@weekly": expanded = "0 0 * * 0"
        case "@daily", "@midnight": expanded = "0 0 * * *"
        case "@hourly": expanded = "0 * * * *"
        case let t where t.hasPrefix("@"): throw ErrorReply(.invalidArgument, "cron: unknown shorthand '\(t)'")
        case let t: expanded = t
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ErrorReply(.invalidArgument, "cron: '\(text)' has \(fields.count) fields; it needs 5: minute hour day-of-month month day-of-week")
        }
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = UInt32(try Self.field(fields[1], "hour", 0...23))
        days = UInt32(try Self.field(fields[2], "day of month", 1...31))
        months = UInt16(try Self.field(fields[3], "month", 1...12, names: Self.monthNames))
        var weekdayBits = try Self.field(fields[4], "day of week", 0...7, names: Self.weekdayNames)
        if weekdayBits & (1 << 7) != 0 { weekdayBits = (weekdayBits | 1) & 0x7F }  // 7 is Sunday too
        weekdays = UInt8(weekdayBits)
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
    }

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// One field's values as bits; `names` stand for the values from the range's start on.
    static func field(_ text: String, _ what: String, _ range: ClosedRange<Int>, names: [String] = []) throws(ErrorReply) -> UInt64 {
        func value(_ s: Substring) throws(ErrorReply) -> Int {
            if let n = Int(s), range.contains(n) { return n }
            if let i = names.firstIndex(of: s.lowercased()) { return range.lowerBound + i }
            throw ErrorReply(.invalidArgument, "cron: '\(s)' is not a \(what) (\(range.lowerBound)–\(range.upperBound))")
        }
        var bits: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0, s <= range.upperBound else {
                    throw ErrorReply(.invalidArgument, "cron: step '\(pieces[1])' in the \(what) field is not a positive number within its range")
                }
                step = s
            }
            let spec = pieces[0]
            var low: Int
            var high: Int
            if spec == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = spec.firstIndex(of: "-") {
                low = try value(spec[..<dash])
                high = try value(spec[spec.index(after: dash)...])
                guard low <= high else { throw ErrorReply(.invalidArgument, "cron: range '\(spec)' of the \(what) field runs backwards") }
            } else {
                low = try value(spec)
                high = pieces.count == 2 ? range.upperBound : low  // "5/15": from 5 on, every 15
            }
            for v in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(v) }
        }
        return bits
    }

    /// The first slot strictly after `time`, on a whole minute; nil when none comes within 8 years
    /// (an expression such as `0 0 30 2 *` names no day that exists).
    public func next(after time: Timestamp) -> Timestamp? {
        var minute = Int64(time.milliseconds / 60_000) + 1  // minutes since the epoch
        let limit = minute + 8 * 366 * 24 * 60
        while minute < limit {
            let day = minute / 1440
            let (y, m, d) = Self.civil(fromDays: day)
            if months & (1 << UInt16(m)) == 0 {
                // The first day of the next month.
                let (ny, nm) = m == 12 ? (y + 1, 1) : (y, m + 1)
                minute = Self.days(fromCivil: ny, nm, 1) * 1440
                continue
            }
            if !matchesDay(d, weekday: Int((day + 4) % 7)) {  // 1970-01-01 was a Thursday (4)
                minute = (day + 1) * 1440
                continue
            }
            let hour = Int((minute % 1440) / 60)
            if hours & (1 << UInt32(hour)) == 0 {
                minute = day * 1440 + Int64(hour + 1) * 60
                continue
            }
            if minutes & (1 << UInt64(minute % 60)) == 0 {
                minute += 1
                continue
            }
            return Timestamp(milliseconds: UInt64(minute) * 60_000)
        }
        return nil
    }

    func matchesDay(_ day: Int, weekday: Int) -> Bool {
        let dom = days & (1 << UInt32(day)) != 0
        let dow = weekdays & (1 << UInt8(weekday)) != 0
        if daysRestricted && weekdaysRestricted { return dom || dow }
        return dom && dow
    }

    /// The date of day `z` since 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm).
    static func civil(fromDays z: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), Int(m), Int(d))
    }

    /// Days since 1970-01-01 of a date (the inverse of `civil(fromDays:)`).
    static func days(fromCivil year: Int64, _ month: Int, _ day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
