import BatonClientCore
import BatonProtocol
import Logging

/// Claims jobs of some types and runs a handler on each, `concurrency` at a time.
///
/// While a handler runs, the worker extends the claim every third of the job's timeout. When the
/// handler returns, the job is completed with the bytes it returned; when it throws, the job fails
/// (and is retried or goes dead by its own rules). If the claim may end (an extend is refused, or
/// none is confirmed in time), the handler is cancelled before the claim can have ended on the node.
///
/// ```swift
/// let worker = JobWorker(client: baton, types: ["thumbnail"], concurrency: 4) { job in
///     try await makeThumbnail(job.payload)
/// }
/// try await worker.run()   // until the task is cancelled
/// ```
public struct JobWorker: Sendable {
    public let client: BatonClient
    public let types: [String]
    public let concurrency: Int
    /// Shown as the worker in job listings.
    public let name: String
    /// How long one claim request waits for a job before asking again.
    public var pollWait: Duration = .seconds(20)
    let handler: @Sendable (ClaimedJob) async throws -> [UInt8]

    public init(
        client: BatonClient, types: [String], concurrency: Int = 1, name: String? = nil,
        handler: @escaping @Sendable (ClaimedJob) async throws -> [UInt8]
    ) {
        self.client = client
        self.types = types
        self.concurrency = max(1, concurrency)
        self.name = name ?? client.configuration.name
        self.handler = handler
    }

    /// Claims and runs jobs until the calling task is cancelled.
    ///
    /// Claims come in batches (JOB_CLAIM_BATCH) of as many jobs as there are free slots, so a worker
    /// that runs 16 at a time fills them in one request; when none is ready it waits with one
    /// JOB_CLAIM. When a handler ends, its outcome and the claim for its slot go out together, in one
    /// round trip: a completion in the same request as the claim (JOB_COMPLETE_BATCH, one log entry),
    /// a failure (JOB_FAIL) pipelined beside it. It never claims more than it can start: a claim that
    /// arrives after cancellation is handed back at once (JOB_ABORT, the attempt not counted). A node
    /// that does not know the batches (an older build, or a cluster in the middle of an upgrade) is
    /// asked one job at a time, and told each outcome on its own.
    public func run() async throws {
        await withTaskGroup(of: Event.self) { group in
            var running = 0
            var waiting = false
            var batches = true
            var completionBatches = true
            var finished: [JobCompletion] = []  // completed, to be sent with the next claim
            while !Task.isCancelled {
                let free = concurrency - running - (waiting ? 1 : 0)
                var claimed: (jobs: [ClaimedJob], validUntil: [ContinuousClock.Instant]) = ([], [])
                if !finished.isEmpty {
                    do {
                        let done = try await client.completeJobsCounted(
                            finished, thenClaim: batches ? free : 0, types: types, worker: name)
                        for (completion, code) in zip(finished, done.outcomes) {
                            guard let code else { continue }
                            client.configuration.logger.warning(
                                "could not report job outcome", metadata: ["job.id": "\(completion.id)", "error": "\(code)"])
                        }
                        claimed = (done.claimed, done.validUntil)
                    } catch BatonClientError.server(let e) where e.code == .unknownOpcode {
                        completionBatches = false  // an older node: each outcome on its own
                        for c in finished { group.addTask { await self.report(c); return .reported } }
                    } catch {
                        client.configuration.logger.warning("could not report job outcomes", metadata: ["error": "\(error)"])
                    }
                    finished = []
                } else if free > 0 && batches {
                    do {
                        claimed = try await client.claimJobsCounted(types: types, max: free, worker: name)
                    } catch BatonClientError.server(let e) where e.code == .unknownOpcode {
                        batches = false  // an older node: one job at a time, with a wait
                    } catch {
                        if Task.isCancelled { break }
                        client.configuration.logger.warning("claim failed", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: Pacing.afterFailedClaim)
                        continue
                    }
                }
                for (job, until) in zip(claimed.jobs, claimed.validUntil) {
                    if Task.isCancelled {
                        handBack(job)
                        continue
                    }
                    running += 1
                    group.addTask { await self.handle(job, validUntil: until) }
                }
                if !claimed.jobs.isEmpty { continue }
                if !waiting && running < concurrency {
                    waiting = true
                    group.addTask { await self.waitForJob() }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .finished(let job, .completed(let result)) where completionBatches:
                    running -= 1
                    // Sent with the claim for its slot: one request, one log entry.
                    finished.append(JobCompletion(id: job.id, token: job.token, result: result))
                case .finished(let job, let outcome):
                    running -= 1
                    // Reported beside the next claim, not before it: both go out at once.
                    group.addTask { await self.report(job, outcome); return .reported }
                case .reported:
                    break
                case .waited(let job, let until):
                    waiting = false
                    guard let job else { continue }
                    if Task.isCancelled {
                        handBack(job)
                        continue
                    }
                    running += 1
                    group.addTask { await self.handle(job, validUntil: until) }
                case .waitFailed:
                    waiting = false
                    if !Task.isCancelled { try? await Task.sleep(for: Pacing.afterFailedClaim) }
                }
            }
            // Cancelled: the handlers are cancelled with the group; their outcomes are still reported.
            for c in finished { await report(c) }
            while let event = await group.next() {
                switch event {
                case .finished(let job, let outcome): await report(job, outcome)
                case .waited(let job?, _): handBack(job)
                default: break
                }
            }
        }
    }

    /// What the tasks of `run` tell it.
    private enum Event: Sendable {
        case finished(ClaimedJob, Outcome)
        case reported
        case waited(ClaimedJob?, validUntil: ContinuousClock.Instant)
        case waitFailed
    }

    private enum Outcome: Sendable {
        case completed([UInt8])
        case failed(String)
        case lost(String)
    }

    /// One JOB_CLAIM that waits up to `pollWait` for a job.
    private func waitForJob() async -> Event {
        do {
            let (job, until) = try await client.claimJobCounted(types: types, worker: name, wait: pollWait)
            return .waited(job, validUntil: until)
        } catch {
            if !Task.isCancelled {
                client.configuration.logger.warning("claim failed", metadata: ["error": "\(error)"])
            }
            return .waitFailed
        }
    }

    /// Gives a job this worker will not start back to the queue, its attempt not counted.
    private func handBack(_ job: ClaimedJob) {
        let client = self.client
        Task { try? await client.abortJob(job.id, token: job.token) }
    }

    /// Runs the handler on one claimed job and reports the outcome. `validUntil` is when the claim's
    /// lease surely still holds on this machine's clock: the claim's `leaseLeft` counted from when
    /// the claim was sent. Without it the claim is extended before the handler starts.
    public func process(_ job: ClaimedJob, validUntil: ContinuousClock.Instant? = nil) async {
        guard case .finished(_, let outcome) = await handle(job, validUntil: validUntil) else { return }
        await report(job, outcome)
    }

    /// Runs the handler under the claim's keep-alive; the outcome is reported by `report`.
    private func handle(_ job: ClaimedJob, validUntil: ContinuousClock.Instant?) async -> Event {
        let client = self.client
        let handler = self.handler
        let timeout = job.timeout.duration
        do {
            let result = try await withKeepAlive(
                lease: ClientLease(ttl: timeout, validUntil: validUntil ?? .now), what: "job \(job.id)",
                renew: { try await client.extendJobCounted(job.id, token: job.token, ttl: nil).validUntil },
                body: { try await handler(job) })
            return .finished(job, .completed(result))
        } catch BatonClientError.leaseLost(let why) {
            return .finished(job, .lost(why))
        } catch {
            return .finished(job, .failed("\(error)"))
        }
    }

    /// Reports one completion on its own (JOB_COMPLETE).
    private func report(_ completion: JobCompletion) async {
        do {
            try await client.completeJob(completion.id, token: completion.token, result: completion.result)
        } catch {
            client.configuration.logger.warning(
                "could not report job outcome", metadata: ["job.id": "\(completion.id)", "error": "\(error)"])
        }
    }

    private func report(_ job: ClaimedJob, _ outcome: Outcome) async {
        let logger = client.configuration.logger
        do {
            switch outcome {
            case .completed(let result):
                try await client.completeJob(job.id, token: job.token, result: result)
            case .lost(let why):
                logger.warning("job claim lost", metadata: ["job.id": "\(job.id)", "reason": "\(why)"])
            case .failed(let error):
                try await client.failJob(job.id, token: job.token, error: error)
            }
        } catch {
            logger.warning("could not report job outcome", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
    }
}
