import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Schedules on three real `baton serve` processes run as an unprivileged user (issue 22): a 1 s
/// schedule, the leader killed with SIGKILL in the middle, and the jobs added match the slots one
/// to one: no slot twice, none skipped, none counted missed (the outage is far inside the window).
@Suite(.heavy, .timeLimit(.minutes(3))) struct ScheduleProcessTests {
    /// Waits until the schedule has fired `count` slots.
    func waitForFires(_ count: UInt64, _ client: BatonClient) async throws -> ScheduleInfo {
        try await eventually("the schedule fired \(count) slots", every: .milliseconds(100)) {
            try await client.getSchedule("tick").flatMap { $0.fires >= count ? $0 : nil }
        }
    }

    /// Every job of `type`, page by page.
    func allJobs(of type: String, _ client: BatonClient) async throws -> [JobInfo] {
        var jobs: [JobInfo] = []
        var cursor = JobID(0)
        repeat {
            let page = try await client.listJobs(JobFilter(type: type, after: cursor))
            jobs += page.jobs
            cursor = page.next
        } while cursor != JobID(0)
        return jobs
    }

    /// Issue 36: every member killed with SIGKILL for 6 s, longer than the 1.5 s window, then
    /// restarted. The slots of the outage older than the window are counted missed, the rest fired
    /// late, and the slots after it fall on UTC again. Before, slots were judged on the cluster's
    /// clock, which stood still while every member was down: no miss, and every later slot 6 s
    /// late for good.
    @Test func afterTheWholeClusterWasDownSlotsFallOnUTCAgain() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        var processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let client = TestCluster.client(members, name: "calendar", retryTimeout: .seconds(30))
        defer { Task { await client.shutdown() } }
        func utc() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

        let window: UInt64 = 1_500
        let spec = ScheduleSpec(name: "tick", every: 1_000, job: JobSpec(type: "tick"), overlap: .allow, catchUp: Milliseconds(UInt32(window)))
        #expect(try await client.putSchedule(spec) == true)
        let before = try await waitForFires(2, client)

        for p in processes { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
        let downAt = utc()
        try await Task.sleep(for: .seconds(6))  // the outage, longer than the window: the input, not a bound
        let upAt = utc()
        processes = try members.map(TestCluster.launch)
        let after = try await waitForFires(before.fires + 3, client)
        let seenAt = utc()

        // The outage's slots: those older than the window when a leader judged them (after upAt,
        // before seenAt) are missed, in one entry; the later ones were fired.
        // Slots after the kill (none of them could fire) and older than the window at the restart
        // are surely missed; at most those older than the window when the fires were seen may be.
        func slots(after low: UInt64, below high: UInt64) -> Int { high <= low ? 0 : Int((high - 1) / 1000 - low / 1000) }
        let surelyMissed = slots(after: downAt, below: upAt - window)
        let mayBeMissed = slots(after: before.lastSlot.milliseconds, below: seenAt - window + 1)
        #expect(after.misses >= UInt64(surelyMissed) && after.misses <= UInt64(mayBeMissed),
            "\(after.misses) slots counted missed; the outage from \(downAt) to \(upAt) (window \(window) ms) has \(surelyMissed) to \(mayBeMissed) beyond the window")
        // On the UTC grid again: the next slot is the first after now, give or take the fire lag and
        // an election (by the cluster's clock it stood 6 s behind).
        let latest = try #require(try await client.getSchedule("tick"))
        let now = utc()
        #expect(latest.nextSlot.milliseconds + 2_000 >= now, "next slot \(latest.nextSlot.milliseconds) stands \(Int64(now) - Int64(latest.nextSlot.milliseconds)) ms behind UTC \(now)")
        #expect(latest.nextSlot.milliseconds % 1000 == 0)
        // Every slot from the first on is settled once: fired (a job) or missed.
        let jobs = try await allJobs(of: "tick", client)
        let slots = jobs.compactMap { UInt64($0.uniqueKey.split(separator: ":").last ?? "") }
        #expect(Set(slots).count == jobs.count, "\(jobs.map(\.uniqueKey))")
        let first = try #require(slots.min())
        #expect(latest.fires + latest.misses == (latest.nextSlot.milliseconds - first) / 1000, "\(latest)")
        // batonctl shows the lag from the calendar slot.
        let list = try await built("batonctl", ["schedules", "list", "--endpoints", members.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")])
        #expect(list.status == 0 && list.out.contains("LAG") && list.out.contains("tick"), "\(list.out)\(list.err)")
    }

    @Test func aOneSecondScheduleFiresEachSlotOnceAcrossALeaderKill() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        var processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        var c = BatonClient.Configuration(endpoints: endpoints, name: "scheduler")
        c.retryTimeout = .seconds(20)
        let client = BatonClient(configuration: c)
        defer { Task { await client.shutdown() } }

        let spec = ScheduleSpec(name: "tick", every: 1_000, job: JobSpec(type: "tick"), overlap: .allow)
        #expect(try await client.putSchedule(spec) == true)
        #expect(try await client.putSchedule(spec) == false)  // every replica may put it at start
        let before = try await waitForFires(3, client)

        guard let victim = await TestCluster.leader(members) else {
            Issue.record("no member says it leads")
            return
        }
        kill(processes[victim].processIdentifier, SIGKILL)
        processes[victim].waitUntilExit()
        let after = try await waitForFires(before.fires + 4, client)
        processes[victim] = try TestCluster.launch(members[victim])

        // One job per slot, every slot from the first to the last settled.
        let jobs = try await allJobs(of: "tick", client)
        let slots = jobs.compactMap { UInt64($0.uniqueKey.split(separator: ":").last ?? "") }
        #expect(slots.count == jobs.count, "\(jobs.map(\.uniqueKey))")
        #expect(Set(slots).count == slots.count, "a slot added two jobs: \(slots.sorted())")
        let now = try #require(try await client.getSchedule("tick"))
        #expect(now.misses == 0, "slots counted missed in an outage of seconds: \(now)")
        #expect(UInt64(slots.count) == now.fires)
        if let first = slots.min() {
            #expect(slots.sorted() == Array(stride(from: first, through: now.lastSlot.milliseconds, by: 1000)), "\(slots.sorted())")
        }
        #expect(now.fires > after.fires - 1)

        // batonctl shows it, and pausing stops it.
        let r = try await built("batonctl", ["schedules", "get", "tick", "--output", "json", "--endpoints", endpoints.joined(separator: ",")])
        #expect(r.status == 0, "\(r.err)")
        let view = try json(r.out) as? [String: Any]
        #expect((view?["fires"] as? Int).map { $0 >= Int(now.fires) } == true, "\(r.out)")
        #expect(view?["when"] as? String == "every 1.0s")
        try await client.pauseSchedule("tick")
        let paused = try #require(try await client.getSchedule("tick"))
        #expect(paused.spec.paused)
        #expect(paused.nextSlot == .zero)

        // Bad input: a clear error, nothing held.
        let at = ["--endpoints", endpoints.joined(separator: ",")]
        let badCron = try await built("batonctl", ["schedules", "put", "bad", "--cron", "61 * * * *", "--type", "t"] + at)
        #expect(badCron.status == 1)
        #expect(badCron.err.contains("INVALID_ARGUMENT") && badCron.err.contains("'61' is not a minute"), "\(badCron.err)")
        let both = try await built("batonctl", ["schedules", "put", "bad", "--cron", "* * * * *", "--every", "1s", "--type", "t"] + at)
        #expect(both.status == 2, "\(both.err)")
        let short = try await built("batonctl", ["schedules", "put", "bad", "--every", "10ms", "--type", "t"] + at)
        #expect(short.status == 1)
        #expect(short.err.contains("below the minimum"), "\(short.err)")
        #expect(try await client.getSchedule("bad") == nil)
        #expect(try await client.listSchedules().map(\.spec.name) == ["tick"])
    }
}
