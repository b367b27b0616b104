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
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask { await self.loop() }
            }
        }
    }

    private func loop() async {
        let logger = client.configuration.logger
        while !Task.isCancelled {
            let job: ClaimedJob?
            let validUntil: ContinuousClock.Instant
            do {
                (job, validUntil) = try await client.claimJobCounted(types: types, worker: name, wait: pollWait)
            } catch {
                if Task.isCancelled { return }
                logger.warning("claim failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            guard let job else { continue }
            await process(job, validUntil: validUntil)
        }
    }

    /// Runs the handler on one claimed job and reports the outcome. `validUntil` is when the claim's
    /// lease surely still holds on this machine's clock: the claim's `leaseLeft` counted from when
    /// the claim was sent. Without it the claim is extended before the handler starts.
    public func process(_ job: ClaimedJob, validUntil: ContinuousClock.Instant? = nil) async {
        let logger = client.configuration.logger
        let client = self.client
        let handler = self.handler
        let timeout = job.timeout.duration
        let outcome: Result<[UInt8], any Error>
        do {
            outcome = .success(
                try await withKeepAlive(
                    ttl: timeout, validUntil: validUntil ?? .now - timeout, what: "job \(job.id)",
                    renew: { try await client.extendJobCounted(job.id, token: job.token, ttl: nil).validUntil },
                    body: { try await handler(job) }))
        } catch {
            outcome = .failure(error)
        }
        do {
            switch outcome {
            case .success(let result):
                try await client.completeJob(job.id, token: job.token, result: result)
            case .failure(BatonClientError.leaseLost(let why)):
                logger.warning("job claim lost", metadata: ["job.id": "\(job.id)", "reason": "\(why)"])
            case .failure(let error):
                try await client.failJob(job.id, token: job.token, error: "\(error)")
            }
        } catch {
            logger.warning("could not report job outcome", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
    }
}
