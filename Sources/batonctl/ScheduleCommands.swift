import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

struct Schedules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Schedules: recurring jobs the cluster fires once per slot.",
        discussion: """
            A slot fires when it comes, or later within the catch-up window when no leader could \
            fire it on time; older slots are counted missed. Interval slots are multiples of the \
            interval since the Unix epoch; cron slots are in UTC.
            """,
        subcommands: [List.self, Get.self, Put.self, Delete.self, Pause.self, Resume.self, Trigger.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every schedule, by name, with its next slot, its lag and its counts.",
            discussion: """
                Slots are UTC (the calendar clock): NEXT is the time until the next slot and LAG how far \
                that slot already lies behind UTC now, both by this host's clock; LAG is - while the \
                slot has not come. A lag that stays above the fire lag (milliseconds) means no leader \
                can fire: slots older than the catch-up window will be counted missed.
                """)
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (schedules, now) = try await global.withClient { c in
                var all: [ScheduleInfo] = []
                while true {
                    let page = try await c.listSchedules(after: all.last?.spec.name ?? "", limit: 1000)
                    all += page
                    if page.count < 1000 { break }
                }
                return (all, utcNow())
            }
            let views = schedules.map { ScheduleView($0, now: now) }
            global.emit(views) {
                table(
                    ["NAME", "WHEN", "TYPE", "STATE", "NEXT", "LAG", "FIRES", "SKIPS", "MISSES", "LAST JOB"],
                    views.map {
                        [$0.name, $0.when, $0.type, $0.state, $0.nextInMs.map { $0 > 0 ? seconds($0) : "now" } ?? "-",
                         $0.lagMs.map(seconds) ?? "-", "\($0.fires)", "\($0.skips)", "\($0.misses)", $0.lastJob == 0 ? "-" : "\($0.lastJob)"]
                    })
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One schedule, every field.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String

        func run() async throws {
            let (info, now) = try await global.withClient { c in (try await c.getSchedule(name), utcNow()) }
            guard let info else { throw CtlError.refused("no schedule '\(name)'") }
            let v = ScheduleView(info, now: now)
            global.emit(v) {
                """
                name          \(v.name)
                when          \(v.when)
                state         \(v.state)
                next slot     \(v.nextInMs.map { "in \(seconds($0))" } ?? "-")
                lag           \(v.lagMs.map(seconds) ?? "-")
                last slot     \(v.lastSlotMs == 0 ? "-" : "\(v.lastSlotMs) ms since the epoch")
                last job      \(v.lastJob == 0 ? "-" : "\(v.lastJob)")
                fires         \(v.fires)
                skips         \(v.skips)
                misses        \(v.misses)
                job type      \(v.type)
                overlap       \(v.overlap)
                jitter        \(seconds(Int64(v.jitterMs)))
                catch-up      \(seconds(Int64(v.catchUpMs)))
                payload       \(v.payload)
                """
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a schedule, or change the one of this name (the same again changes nothing).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: "Fire every this long (e.g. 30s, 5m), on multiples of it since the epoch.") var every: DurationArgument?
        @Option(help: "Fire at the minutes of this cron expression, in UTC (five fields, or @hourly, @daily...).") var cron: String?
        @Option(help: "The job's type.") var type: String
        @Option(help: "The job's payload, as text.") var payload = ""
        @Option(help: "Higher runs first.") var priority: Int32 = 0
        @Option(help: "Attempts before a job is dead (default 5).") var maxAttempts: UInt16 = 0
        @Option(help: "Lease of each claim (default 60s).") var timeout: DurationArgument?
        @Option(help: "Each slot's job becomes claimable up to this long after its slot.") var jitter: DurationArgument?
        @Option(help: "While the previous slot's job is unfinished: skip, allow or buffer-one.") var overlap: OverlapPolicy = .skip
        @Option(help: "Slots at most this old are fired late after an outage; older ones are missed (default 1m).")
        var catchUp: DurationArgument?
        @Flag(help: "Create it paused.") var paused = false

        func validate() throws {
            guard (every == nil) != (cron == nil) else { throw ValidationError("give --every or --cron, one of them") }
        }

        func run() async throws {
            let spec = ScheduleSpec(
                name: name, every: Milliseconds(UInt32(clamping: every?.milliseconds ?? 0)), cron: cron ?? "",
                jitter: Milliseconds(UInt32(clamping: jitter?.milliseconds ?? 0)),
                job: JobSpec(
                    type: type, payload: Array(payload.utf8), priority: priority, maxAttempts: maxAttempts,
                    timeout: Milliseconds(UInt32(clamping: timeout?.milliseconds ?? 0))),
                overlap: overlap, catchUp: Milliseconds(UInt32(clamping: catchUp?.milliseconds ?? 0)), paused: paused)
            let created = try await global.withClient { try await $0.putSchedule(spec) }
            struct Put: Codable { var name: String; var created: Bool }
            global.emit(Put(name: name, created: created)) { created ? "created schedule \(name)" : "schedule \(name) is up to date" }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule; the jobs it added stay.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String

        func run() async throws {
            try await global.withClient { try await $0.deleteSchedule(name) }
            struct Deleted: Codable { var name: String }
            global.emit(Deleted(name: name)) { "deleted schedule \(name)" }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop firing; the slots until resume are neither fired nor missed.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String

        func run() async throws {
            try await global.withClient { try await $0.pauseSchedule(name) }
            struct Paused: Codable { var name: String; var state: String }
            global.emit(Paused(name: name, state: "paused")) { "paused schedule \(name)" }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fire again, from the first slot after now.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String

        func run() async throws {
            try await global.withClient { try await $0.resumeSchedule(name) }
            struct Resumed: Codable { var name: String; var state: String }
            global.emit(Resumed(name: name, state: "active")) { "resumed schedule \(name)" }
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add the schedule's job now, whatever its slots and overlap policy.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The schedule's name.") var name: String

        func run() async throws {
            let id = try await global.withClient { try await $0.triggerSchedule(name) }
            struct Triggered: Codable { var name: String; var job: UInt64 }
            global.emit(Triggered(name: name, job: id.rawValue)) { "added job \(id) of schedule \(name)" }
        }
    }
}

extension OverlapPolicy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let p = OverlapPolicy.allCases.first(where: { $0.description == argument }) else { return nil }
        self = p
    }
}

struct ScheduleView: Codable {
    var name: String
    var when: String
    var type: String
    var state: String
    var overlap: String
    var jitterMs: UInt32
    var catchUpMs: UInt32
    var nextSlotMs: UInt64?
    var nextInMs: Int64?
    /// How far the next slot lies behind UTC now; nil while it has not come.
    var lagMs: Int64?
    var lastSlotMs: UInt64
    var lastJob: UInt64
    var fires: UInt64
    var skips: UInt64
    var misses: UInt64
    var payload: String

    init(_ s: ScheduleInfo, now: Timestamp) {
        name = s.spec.name
        when = s.spec.cron.isEmpty ? "every \(seconds(Int64(s.spec.every.rawValue)))" : s.spec.cron
        type = s.spec.job.type
        state = s.spec.paused ? "paused" : "active"
        overlap = s.spec.overlap.description
        jitterMs = s.spec.jitter.rawValue
        catchUpMs = s.spec.catchUpWindow.rawValue
        let planned = s.nextSlot != .zero && s.nextSlot != .never && !s.spec.paused
        nextSlotMs = planned ? s.nextSlot.milliseconds : nil
        nextInMs = planned ? Int64(s.nextSlot.milliseconds) - Int64(now.milliseconds) : nil
        lagMs = nextInMs.flatMap { $0 <= 0 ? -$0 : nil }
        lastSlotMs = s.lastSlot.milliseconds
        lastJob = s.lastJob.rawValue
        fires = s.fires
        skips = s.skips
        misses = s.misses
        payload = JobView.text(s.spec.job.payload)
    }
}

/// UTC now by this host's clock: schedule slots are UTC (the calendar clock, PROTOCOL.md §8a).
func utcNow() -> Timestamp {
    Timestamp(milliseconds: UInt64(max(0, Date().timeIntervalSince1970 * 1000)))
}
