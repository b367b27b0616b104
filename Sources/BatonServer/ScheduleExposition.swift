/// The per-schedule counters in the Prometheus text format, written from the replicated state at
/// each scrape.
///
/// Written by hand, not through swift-prometheus: its registry copies its table of series each time
/// one is made, so making the three series of each of 10,000 schedules took a new leader long
/// enough to lose its office, again and again (`baton-bench schedules`, profiled with perf). And
/// counts from the state are the cluster's: every member shows the same numbers, which do not
/// start again at zero when another member takes over (take `max by (schedule)` across members).
enum ScheduleExposition {
    static let counters: [(name: String, help: String)] = [
        ("baton_schedule_fires_total", "Slots of each schedule that added their job."),
        ("baton_schedule_skipped_total", "Slots of each schedule that its overlap policy (or the job quota) skipped."),
        ("baton_schedule_missed_total", "Slots of each schedule older than its catch-up window when the cluster could fire them."),
    ]

    static func write(_ counts: [(name: String, fires: UInt64, skips: UInt64, misses: UInt64)], into text: inout String) {
        guard !counts.isEmpty else { return }
        for (i, counter) in counters.enumerated() {
            text += "# HELP \(counter.name) \(counter.help)\n# TYPE \(counter.name) counter\n"
            for c in counts {
                let value = i == 0 ? c.fires : i == 1 ? c.skips : c.misses
                text += "\(counter.name){schedule=\"\(escaped(c.name))\"} \(value)\n"
            }
        }
    }

    /// A label value as the text format quotes it: backslash, double quote and line feed escaped.
    static func escaped(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var out = ""
        for ch in value {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }
}
