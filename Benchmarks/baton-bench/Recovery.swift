import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

struct Recovery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill a durable node with jobs and held locks, kill -9 it, and time its restart.",
        discussion: """
            Starts `baton dev --data-dir` in a temporary directory, adds --jobs jobs and takes --locks \
            locks (held, one-hour leases), kills the node with SIGKILL, starts it again and measures \
            the time from launch until it answers, then checks that every lock and job is back. Prints \
            the restart time and the size of the data directory.
            """)

    @Option(help: "Path of the baton executable (default: next to this one).") var baton: String?
    @Option(help: "Jobs to add.") var jobs = 100_000
    @Option(help: "Locks to take and hold.") var locks = 100_000
    @Option(help: "Requests in flight while filling.") var concurrency = 64
    @Option(help: "Port for the node.") var port = 17790
    @Option(help: "Use this data directory and keep it (to profile a restart from it again).") var keep: String?

    func run() async throws {
        let executable = baton ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("baton").path
        let dir = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("baton-recovery-\(UUID())").path
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: dir) } }

        var node = try launch(executable, dir: dir)
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "recovery-bench"))
        let fillStart = ContinuousClock.now
        try await fill(client)
        print("filled \(jobs) jobs and \(locks) locks in \(ContinuousClock.now - fillStart)")
        await client.shutdown()
        try await Task.sleep(for: .seconds(2))  // let a background snapshot finish, as on a long-running node
        kill(node.processIdentifier, SIGKILL)
        node.waitUntilExit()
        let size = directorySize(dir)

        let restartStart = ContinuousClock.now
        node = try launch(executable, dir: dir)
        let checker = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "recovery-check"))
        while true {
            do {
                _ = try await checker.serverTime()
                break
            } catch {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        let restart = ContinuousClock.now - restartStart
        let rss = residentBytes(node.processIdentifier)
        let listStart = ContinuousClock.now
        let (foundLocks, foundJobs) = try await count(checker)
        let listing = ContinuousClock.now - listStart
        await checker.shutdown()
        kill(node.processIdentifier, SIGTERM)
        node.waitUntilExit()

        print("data directory: \(size / 1_048_576) MiB (\(size) bytes)")
        print("restart after kill -9, from launch to first answer: \(restart)")
        print("node's resident memory after the restart: \(rss / 1_048_576) MiB")
        print("recovered: \(foundLocks) of \(locks) locks, \(foundJobs) of \(jobs) jobs, listed in pages of 1,000 in \(listing)")
        if foundLocks != locks || foundJobs != jobs { throw ExitCode(1) }
    }

    func launch(_ executable: String, dir: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["dev", "--port", "\(port)", "--no-metrics", "--data-dir", dir, "--log-level", "warning"]
        try p.run()
        return p
    }

    func fill(_ client: BatonClient) async throws {
        let total = jobs + locks
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    var i = lane
                    while i < total {
                        if i < self.jobs {
                            _ = try await client.addJob(JobSpec(type: "recovery", payload: Array("job \(i)".utf8)))
                        } else {
                            _ = try await client.acquireLock("recovery/\(i)", ttl: .seconds(3600))
                        }
                        i += self.concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func count(_ client: BatonClient) async throws -> (locks: Int, jobs: Int) {
        var lockCount = 0
        var after = ""
        while true {
            let page = try await client.listLocks(prefix: "recovery/", after: after, limit: 1000)
            lockCount += page.count
            guard let last = page.last else { break }
            after = last.key
        }
        var jobCount = 0
        var cursor = JobID(0)
        repeat {
            let page = try await client.listJobs(JobFilter(type: "recovery", after: cursor, limit: 1000))
            jobCount += page.jobs.count
            cursor = page.next
        } while cursor != JobID(0)
        return (lockCount, jobCount)
    }

    /// The resident set of process `pid` (VmRSS), in bytes; 0 when it cannot be read.
    func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kb * 1024
    }

    func directorySize(_ dir: String) -> Int {
        let files = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []
        return files.reduce(0) { sum, f in
            sum + ((try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(f)")[.size] as? Int) ?? 0)
        }
    }
}
