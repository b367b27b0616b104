import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

/// Jobs through the batch commands: how many a second go add → claim → complete.
struct Batches: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Jobs added, claimed and completed in batches (JOB_ADD_BATCH, JOB_COMPLETE_BATCH): jobs completed a second.",
        discussion: """
            Each of --workers clients (one connection each) loops: add --batch jobs in one request, \
            then complete the jobs it holds and claim up to --batch more in one request \
            (JOB_COMPLETE_BATCH). With --complete-each it claims with JOB_CLAIM_BATCH and completes \
            each job with a JOB_COMPLETE of its own, all in flight at once on its connection (as \
            protocol version 4 did). With --batch 1 it uses JOB_ADD, JOB_CLAIM and JOB_COMPLETE, \
            one job per cycle, for comparison. Prints jobs completed a second after --warmup seconds, \
            over --seconds. The node or cluster must be running (--endpoints).
            """)

    @Option(help: "The node or the cluster's members, host:port, comma-separated.") var endpoints = "127.0.0.1:7700"
    @Option(help: "Clients, one connection each.") var workers = 4
    @Option(help: "Jobs per batch (1: the single-job commands).") var batch = 100
    @Option(help: "Seconds before the measurement.") var warmup = 2.0
    @Option(help: "Seconds measured.") var seconds = 5.0
    @Flag(help: "Complete each job with a JOB_COMPLETE of its own, as protocol version 4 did.") var completeEach = false
    @Option(help: "Bearer token, for a cluster with authentication on.") var token: String?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...1000).contains(batch) else { throw ValidationError("--batch must be 1 to 1000") }
        guard workers > 0 else { throw ValidationError("--workers must be at least 1") }
    }

    func run() async throws {
        let list = endpoints.split(separator: ",").map(String.init)
        let payload = [UInt8](repeating: 0x61, count: 64)
        let batch = self.batch
        let completed = Counter()
        let start = ContinuousClock.now
        let measureFrom = start + .milliseconds(Int64(warmup * 1000))
        let end = measureFrom + .milliseconds(Int64(seconds * 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<workers {
                group.addTask {
                    var configuration = BatonClient.Configuration(endpoints: list, name: "batches-\(w)")
                    configuration.token = token
                    configuration.retryTimeout = .seconds(30)
                    let client = BatonClient(configuration: configuration)
                    defer { Task { await client.shutdown() } }
                    let type = "bench-batch-\(w)"
                    var held: [ClaimedJob] = []
                    while ContinuousClock.now < end && batch > 1 && !completeEach {
                        try await client.addJobs(Array(repeating: JobSpec(type: type, payload: payload), count: batch))
                        let (outcomes, next) = try await client.completeJobs(
                            held.map { JobCompletion(id: $0.id, token: $0.token) }, thenClaim: batch, types: [type])
                        let now = ContinuousClock.now
                        if now >= measureFrom && now < end { await completed.add(outcomes.filter { $0 == nil }.count) }
                        held = next
                    }
                    while ContinuousClock.now < end {
                        let jobs: [ClaimedJob]
                        if batch == 1 {
                            try await client.addJob(JobSpec(type: type, payload: payload))
                            jobs = try await client.claimJob(types: [type]).map { [$0] } ?? []
                        } else {
                            try await client.addJobs(Array(repeating: JobSpec(type: type, payload: payload), count: batch))
                            jobs = try await client.claimJobs(types: [type], max: batch)
                        }
                        try await withThrowingTaskGroup(of: Void.self) { completions in
                            for job in jobs { completions.addTask { try await client.completeJob(job.id, token: job.token) } }
                            try await completions.waitForAll()
                        }
                        let now = ContinuousClock.now
                        if now >= measureFrom && now < end { await completed.add(jobs.count) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = await completed.value
        let perSecond = Double(total) / seconds
        if json {
            print("{\"workers\": \(workers), \"batch\": \(batch), \"completeEach\": \(completeEach), \"completed\": \(total), \"jobsPerSecond\": \(Int(perSecond))}")
        } else {
            print("\(workers) workers, batches of \(batch): \(total) jobs completed in \(seconds) s, \(Int(perSecond)) jobs/s")
        }
    }
}

/// Jobs completed inside the measured window.
private actor Counter {
    private(set) var value = 0
    func add(_ n: Int) { value += n }
}
