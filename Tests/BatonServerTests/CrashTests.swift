import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// What the load generator was told, and so must survive any crash.
struct Acknowledged: Sendable {
    var locks: [String: FencingToken] = [:]
    var jobs: [JobID: [UInt8]] = [:]
    var completions: [JobID: [UInt8]] = [:]
    var maxToken = FencingToken(0)
    /// Why each load worker stopped.
    var stops: [String] = []
}

/// A real `baton` process with a data directory, killed with SIGKILL at random moments under load from
/// several clients and restarted, again and again. After every restart, everything that was
/// acknowledged must be there, and nothing may appear twice.
@Suite(.heavy, .timeLimit(.minutes(3))) struct CrashTests {
    @Test func killNineUnderLoadLosesNothingAcknowledged() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await freePort()
        let acked = NIOLockedValueBox(Acknowledged())
        for round in 0..<20 {
            let errors = Pipe()
            let process = try launchNode(
                ["dev", "--port", "\(port)", "--no-metrics", "--data-dir", dir, "--log-level", "error"], output: .pipe(errors))

            let checker = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "checker"))
            do {
                try await acked.withLockedValue { $0 }.verify(with: checker, round: round)
            } catch {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let log = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
                Issue.record("round \(round): \(error)\nnode log: \(log)")
                throw error
            }
            await checker.shutdown()

            try await loadThenKill(process, port: port, round: round, acked: acked)
            #expect(process.terminationReason == .uncaughtSignal)
        }
        let total = acked.withLockedValue { ($0.locks.count, $0.jobs.count, $0.completions.count) }
        #expect(total.0 > 100 && total.1 > 100 && total.2 > 50, "too little load to mean anything: \(total)")
    }
}

/// Load from four clients, then a kill of `process` at a random moment in the middle of it; returns
/// once the process is gone.
func loadThenKill(_ process: Process, port: Int, round: Int, acked: NIOLockedValueBox<Acknowledged>) async throws {
    let loadFor = Int.random(in: 100...400)  // real processes: the moment cannot be replayed anyway
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<4 {
            group.addTask { await load(port: port, round: round, worker: worker, acked: acked) }
        }
        try await Task.sleep(for: .milliseconds(loadFor))
        kill(process.processIdentifier, SIGKILL)
        try await group.waitForAll()
    }
    process.waitUntilExit()
}

/// One client's load: take a lock (kept, long lease), add a job, claim and complete one; record each
/// acknowledged result. Stops at the first failure (the node was killed).
func load(
    port: Int, round: Int, worker: Int, acked: NIOLockedValueBox<Acknowledged>, endpoints: [String]? = nil,
    retryTimeout: Duration = .milliseconds(200)
) async {
    var config = BatonClient.Configuration(endpoints: endpoints ?? ["127.0.0.1:\(port)"], name: "load-\(worker)")
    config.retryTimeout = retryTimeout
    config.requestTimeout = .seconds(2)
    let client = BatonClient(configuration: config)
    var n = 0
    while !Task.isCancelled {
        n += 1
        let tag = "\(round)-\(worker)-\(n)"
        do {
            let key = "crash/\(tag)"
            if case .granted(let token, _, _) = try await client.acquireLock(key, ttl: .seconds(3600)) {
                acked.withLockedValue {
                    $0.locks[key] = token
                    $0.maxToken = max($0.maxToken, token)
                }
            }
            let payload = Array("job \(tag)".utf8)
            let (id, _) = try await client.addJob(JobSpec(type: "crash.\(worker)", payload: payload))
            acked.withLockedValue { $0.jobs[id] = payload }
            if let job = try await client.claimJob(types: ["crash.\(worker)"]) {
                acked.withLockedValue { $0.maxToken = max($0.maxToken, job.token) }
                let result = Array("done \(tag)".utf8)
                try await client.completeJob(job.id, token: job.token, result: result)
                acked.withLockedValue { $0.completions[job.id] = result }
            }
        } catch {
            acked.withLockedValue { $0.stops.append("worker \(worker): \(error)") }
            break
        }
    }
    await client.shutdown()
}

extension Acknowledged {
    /// Checks, through `client`, that everything acknowledged is there and nothing twice: every
    /// lock with its token, every job with its payload, every completion with its result, and a new
    /// token above every one handed out.
    func verify(with client: BatonClient, round: Int) async throws {
        let acked = self
        // The node may still be starting: the client retries its first connection.
        var locks: [String: FencingToken] = [:]
        var after = ""
        while true {
            let page = try await client.listLocks(prefix: "crash/", after: after, limit: 1000)
            for l in page { locks[l.key] = l.token }
            guard let last = page.last, page.count == 1000 else { break }
            after = last.key
        }
        for (key, token) in acked.locks {
            #expect(locks[key] == token, "round \(round): acknowledged lock \(key) (token \(token)) is \(String(describing: locks[key]))")
        }
        var jobs: [JobID: JobInfo] = [:]
        var cursor = JobID(0)
        repeat {
            let page = try await client.listJobs(JobFilter(after: cursor, limit: 1000))
            for j in page.jobs { jobs[j.id] = j }
            cursor = page.next
        } while cursor != JobID(0)
        for (id, payload) in acked.jobs {
            #expect(jobs[id]?.payload == payload, "round \(round): acknowledged job \(id) is missing")
        }
        for (id, result) in acked.completions {
            #expect(jobs[id]?.state == .completed && jobs[id]?.result == result, "round \(round): completion of job \(id) is missing")
        }
        let payloads = jobs.values.map(\.payload)
        #expect(Set(payloads).count == payloads.count, "round \(round): a job appears twice")
        guard case .granted(let token, _, _) = try await client.acquireLock("probe/\(round)", ttl: .seconds(1)) else { Issue.record("the premise failed: the lock was not granted"); return }
        #expect(token > acked.maxToken, "round \(round): token \(token) after \(acked.maxToken)")
    }}
