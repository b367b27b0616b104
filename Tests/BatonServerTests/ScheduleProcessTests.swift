import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Schedules on three real `baton serve` processes run as an unprivileged user (issue 22): a 1 s
/// schedule, the leader killed with SIGKILL in the middle, and the jobs added match the slots one
/// to one: no slot twice, none skipped, none counted missed (the outage is far inside the window).
@Suite(.heavy, .timeLimit(.minutes(3))) struct ScheduleProcessTests {
    /// Waits until the schedule has fired `count` slots; a guard against a hang, not a bound on speed.
    func waitForFires(_ count: UInt64, _ client: BatonClient) async throws -> ScheduleInfo? {
        let deadline = ContinuousClock.now + .seconds(60)
        var info: ScheduleInfo?
        while ContinuousClock.now < deadline {
            info = try? await client.getSchedule("tick")
            if let info, info.fires >= count { return info }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the schedule fired \(info?.fires ?? 0) slots, not \(count), in 60 s")
        return nil
    }

    @Test func aOneSecondScheduleFiresEachSlotOnceAcrossALeaderKill() async throws {
        let cluster = ClusterTests()
        let members = try await cluster.writeConfigs()
        defer { for m in members { try? FileManager.default.removeItem(atPath: m.directory); try? FileManager.default.removeItem(atPath: m.config) } }
        var processes = try members.map(cluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        var c = BatonClient.Configuration(endpoints: endpoints, name: "scheduler")
        c.retryTimeout = .seconds(20)
        let client = BatonClient(configuration: c)
        defer { Task { await client.shutdown() } }

        let spec = ScheduleSpec(name: "tick", every: 1_000, job: JobSpec(type: "tick"), overlap: .allow)
        #expect(try await client.putSchedule(spec) == true)
        #expect(try await client.putSchedule(spec) == false)  // every replica may put it at start
        guard let before = try await waitForFires(3, client) else { return }

        guard let victim = await cluster.leader(members) else {
            Issue.record("no member says it leads")
            return
        }
        kill(processes[victim].processIdentifier, SIGKILL)
        processes[victim].waitUntilExit()
        guard let after = try await waitForFires(before.fires + 4, client) else { return }
        processes[victim] = try cluster.launch(members[victim])

        // One job per slot, every slot from the first to the last settled.
        var jobs: [JobInfo] = []
        var cursor = JobID(0)
        repeat {
            let page = try await client.listJobs(JobFilter(type: "tick", after: cursor))
            jobs += page.jobs
            cursor = page.next
        } while cursor != JobID(0)
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
