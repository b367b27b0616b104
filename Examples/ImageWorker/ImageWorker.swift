import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

/// A worker service that analyses newly uploaded images, once each, however many replicas run.
///
/// Uploads are files in a directory; the analysis of `x.png` is written to `x.png.analysis`.
/// Start a node (`swift run baton dev`), add some uploads, and run several replicas with one pattern:
///
///     swift run image-worker upload /tmp/uploads --count 5
///     swift run image-worker run /tmp/uploads --pattern jobs --replica a &
///     swift run image-worker run /tmp/uploads --pattern jobs --replica b &
@main
struct ImageWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-worker",
        abstract: "Example worker service: analyse newly uploaded images with Baton, four ways.",
        subcommands: [Upload.self, Run.self, Status.self])
}

enum Pattern: String, ExpressibleByArgument, CaseIterable {
    /// Every replica's timer fires; the one that takes the lock does the scan (try-lock, with renewal).
    case lock
    /// One replica at a time runs the scan every interval; the others wait in line to take over.
    case periodic
    /// Every replica's timer adds a job per new image (deduplicated by unique key); workers claim them.
    case jobs
    /// No replica runs a timer: the scan is a schedule the cluster fires, as a job, once per interval;
    /// whichever replica claims it scans. Every replica puts the same schedule at start (idempotent).
    case schedule
}

extension ImageWorker {
    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Simulate uploads: create fake image files.")

        @Argument(help: "The uploads directory.") var directory: String
        @Option(help: "How many images to create.") var count = 5

        func run() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for _ in 0..<count {
                let name = "img-\(UInt32.random(in: 0...UInt32.max)).png"
                let bytes = (0..<256).map { _ in UInt8.random(in: 0...255) }
                _ = FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes))
                print("uploaded \(name)")
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run one replica of the worker service.")

        @Argument(help: "The uploads directory.") var directory: String
        @Option(help: "How replicas coordinate: \(Pattern.allCases.map(\.rawValue).joined(separator: ", ")).")
        var pattern: Pattern = .jobs
        @Option(help: "This replica's name.") var replica = "replica-\(ProcessInfo.processInfo.processIdentifier)"
        @Option(help: "Baton nodes, host:port, comma-separated (default: $BATON_ENDPOINTS or 127.0.0.1:7700).")
        var endpoints = ProcessInfo.processInfo.environment["BATON_ENDPOINTS"] ?? "127.0.0.1:7700"
        @Option(help: "Seconds between scans.") var interval = 2
        @Option(help: "Stop after this many seconds (0: run until interrupted).") var seconds = 0

        func run() async throws {
            let baton = BatonClient(configuration: .init(endpoints: endpoints.split(separator: ",").map(String.init), name: replica))
            let uploads = Uploads(directory: directory, replica: replica)
            let work = Task { try await serve(baton: baton, uploads: uploads) }
            if seconds > 0 {
                try await Task.sleep(for: .seconds(seconds))
                work.cancel()
            }
            _ = try? await work.value
            await baton.shutdown()
        }

        func serve(baton: BatonClient, uploads: Uploads) async throws {
            let every = Duration.seconds(interval)
            switch pattern {
            case .lock:
                // The hand-rolled pattern done right: a timer on every replica, a lock with a lease that is
                // renewed while the scan runs, and a fencing token carried into the write.
                while !Task.isCancelled {
                    do {
                        try await baton.withLock("images/scan", ttl: .seconds(10)) { lease in
                            try uploads.noteScan("begin", token: lease.token)
                            try await uploads.analyseNew(token: lease.token)
                            try uploads.noteScan("end", token: lease.token)
                        }
                    } catch BatonClientError.lockBusy(_, let holder) {
                        print("[\(replica)] timer fired; \(holder) is scanning")
                    }
                    try await Task.sleep(for: every)
                }
            case .periodic:
                try await baton.runPeriodic("images/scan", every: every) {
                    try await uploads.analyseNew(token: nil)
                }
            case .jobs:
                let worker = JobWorker(client: baton, types: ["image.analyse"], concurrency: 2, name: replica) { job in
                    let name = String(decoding: job.payload, as: UTF8.self)
                    return Array(try await uploads.analyse(name, token: job.token).utf8)
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await worker.run() }
                    group.addTask {
                        // Every replica's timer fires; the unique key makes each image one job.
                        while !Task.isCancelled {
                            for name in uploads.pending() {
                                let added = try await baton.addJob(
                                    JobSpec(type: "image.analyse", payload: Array(name.utf8), timeout: 30_000, uniqueKey: name))
                                if added.created { print("[\(replica)] queued \(name) as job \(added.id)") }
                            }
                            try await Task.sleep(for: every)
                        }
                    }
                    try await group.waitForAll()
                }
            case .schedule:
                // The cluster knows the scan runs every interval; a failover neither skips nor repeats
                // a slot. Overlap `skip`: no second scan is queued while one is still waiting or running.
                try await baton.putSchedule(
                    ScheduleSpec(
                        name: "images/scan", every: Milliseconds(UInt32(interval * 1000)),
                        job: JobSpec(type: "image.scan", timeout: 30_000), overlap: .skip))
                let worker = JobWorker(client: baton, types: ["image.scan"], concurrency: 1, name: replica) { job in
                    print("[\(replica)] scan job \(job.id) (attempt \(job.attempt))")
                    try await uploads.analyseNew(token: job.token)
                    return []
                }
                try await worker.run()
            }
        }
    }
}

extension ImageWorker {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the locks and image jobs on the node.")

        @Option(help: "Baton nodes, host:port, comma-separated (default: $BATON_ENDPOINTS or 127.0.0.1:7700).")
        var endpoints = ProcessInfo.processInfo.environment["BATON_ENDPOINTS"] ?? "127.0.0.1:7700"

        func run() async throws {
            let baton = BatonClient(configuration: .init(endpoints: endpoints.split(separator: ",").map(String.init), name: "image-worker-status"))
            do {
                try await show(baton)
            } catch {
                await baton.shutdown()
                throw error
            }
            await baton.shutdown()
        }

        func show(_ baton: BatonClient) async throws {
            let now = try await baton.serverTime()
            let locks = try await baton.listLocks()
            print("LOCKS (\(locks.count))")
            for l in locks {
                let left = Double(now.distance(to: l.expiresAt)) / 1000
                print("  \(l.key)  held by \(l.owner)  token \(l.token)  expires in \(left)s  waiters \(l.waiters.map(\.owner))")
            }
            let jobs = try await baton.listJobs(JobFilter(type: "image.analyse")).jobs
            print("JOBS (\(jobs.count))")
            for j in jobs {
                print("  #\(j.id)  \(j.state)  attempts \(j.attempts)/\(j.maxAttempts)  \(j.uniqueKey)  \(j.worker)")
            }
        }
    }
}

/// The uploads directory: images, and the analysis written next to each.
struct Uploads: Sendable {
    let directory: String
    let replica: String

    /// Images that have no analysis yet.
    func pending() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let done = Set(files.filter { $0.hasSuffix(".analysis") }.map { String($0.dropLast(".analysis".count)) })
        return files.filter { $0.hasSuffix(".png") && !done.contains($0) }.sorted()
    }

    func analyseNew(token: FencingToken?) async throws {
        for name in pending() { _ = try await analyse(name, token: token) }
    }

    /// Appends "begin|end <replica> <token>" to scans.log in one write, so the scans of every replica
    /// (Python's too) show in order: a begin after a begin would be two holders at once.
    func noteScan(_ what: String, token: FencingToken) throws {
        let fd = open("\(directory)/scans.log", O_WRONLY | O_APPEND | O_CREAT, 0o666)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let line = Array("\(what) \(replica) \(token.rawValue)\n".utf8)
        guard write(fd, line, line.count) == line.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// "Analyses" an image (a checksum and a pause) and writes the result, unless a write with a newer
    /// fencing token got there first.
    func analyse(_ name: String, token: FencingToken?) async throws -> String {
        let data = FileManager.default.contents(atPath: "\(directory)/\(name)") ?? Data()
        try await Task.sleep(for: .milliseconds(300))
        let checksum = data.reduce(UInt32(0)) { ($0 &* 31) &+ UInt32($1) }
        let result = "\(name): \(data.count) bytes, checksum \(checksum), analysed by \(replica)"
            + (token.map { " with fencing token \($0)" } ?? "")
        let path = "\(directory)/\(name).analysis"
        if let token, let existing = try? String(contentsOfFile: path, encoding: .utf8),
            let seen = existing.split(separator: " ").last.flatMap({ UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
            seen > token.rawValue
        {
            print("[\(replica)] \(name): a newer holder (token \(seen)) already wrote; skipping")
            return existing
        }
        try (result + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        print("[\(replica)] \(result)")
        return result
    }
}
