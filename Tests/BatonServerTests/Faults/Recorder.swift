import BatonClient
import BatonProtocol
import NIOConcurrencyHelpers

/// Runs operations through the client library and records each in a `History`: the time it was
/// sent, the time its answer arrived, and the outcome. A final refusal by the node is a definite
/// failure; any other error (a retriable refusal, no answer in time, the connection lost for good)
/// leaves the outcome unknown.
final class Recorder: Sendable {
    private let box = NIOLockedValueBox(History())
    private let origin = ContinuousClock.now

    var history: History { box.withLockedValue { $0 } }

    func micros(_ t: ContinuousClock.Instant) -> Int64 {
        let d = t - origin
        return d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    private func record<T>(
        _ process: Int, _ call: History.Call, _ body: () async throws -> T, outcome: (T) -> History.Outcome
    ) async -> T? {
        let invoke = micros(.now)
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        let complete = micros(.now)
        let op: History.Outcome
        switch result {
        case .success(let value): op = outcome(value)
        // A refusal proves nothing took effect only if it is final: after a retriable one (NOT_LEADER,
        // SHUTTING_DOWN, the last of the client's retries) or SEQUENCE_TOO_OLD, an earlier attempt may
        // have been applied with its answer lost.
        case .failure(let error as BatonClientError)
        where error.serverCode != nil && !error.isRetriable && error.serverCode != .sequenceTooOld:
            op = .refused("\(error)")
        case .failure(let error as FencedResource.Stale): op = .refused("\(error)")
        case .failure: op = .unknown
        }
        box.withLockedValue { $0.operations.append(History.Operation(process: process, call: call, invoke: invoke, complete: complete, outcome: op)) }
        return try? result.get()
    }

    @discardableResult
    func acquire(_ client: BatonClient, process: Int, key: String, ttl: Duration, wait: Duration = .zero) async -> LockAcquisition? {
        await record(process, .acquire(key: key, ttl: Milliseconds(ttl), wait: Milliseconds(wait))) {
            try await client.acquireLock(key, ttl: ttl, wait: wait)
        } outcome: { acquisition in
            switch acquisition {
            case .granted(let token, let expiresAt, let left): .lease(token: token, expiresAt: expiresAt, left: left, job: nil)
            case .busy: .none
            }
        }
    }

    @discardableResult
    func renew(_ client: BatonClient, process: Int, key: String, token: FencingToken, ttl: Duration) async -> Timestamp? {
        await record(process, .renew(key: key, token: token, ttl: Milliseconds(ttl))) {
            try await client.renewLock(key, token: token, ttl: ttl)
        } outcome: { lease in
            .lease(token: token, expiresAt: lease.expiresAt, left: lease.leaseLeft, job: nil)
        }.map(\.expiresAt)
    }

    func release(_ client: BatonClient, process: Int, key: String, token: FencingToken) async {
        _ = await record(process, .release(key: key, token: token)) {
            try await client.releaseLock(key, token: token)
        } outcome: { _ in .done }
    }

    @discardableResult
    func addJob(_ client: BatonClient, process: Int, type: String, uniqueKey: String = "") async -> JobID? {
        await record(process, .addJob(type: type, uniqueKey: uniqueKey)) {
            try await client.addJob(JobSpec(type: type, timeout: 2_000, backoff: 200, uniqueKey: uniqueKey)).id
        } outcome: { .added($0) }
    }

    func claim(_ client: BatonClient, process: Int, type: String, wait: Duration) async -> ClaimedJob? {
        await record(process, .claim(type: type)) {
            try await client.claimJob(types: [type], wait: wait)
        } outcome: { job in
            guard let job else { return .none }
            return .lease(token: job.token, expiresAt: job.leaseExpiresAt, left: job.leaseLeft, job: job.id)
        } ?? nil
    }

    /// LOCK_GET of `key`; a NOT_LEADER answer is recorded as a refusal (the reader is not redirected).
    func read(_ client: BatonClient, process: Int, key: String) async {
        _ = await record(process, .read(key: key)) {
            try await client.getLock(key)
        } outcome: { .read($0?.token) }
    }

    /// A write to `resource` under `token`; accepted or refused as stale.
    func write(_ resource: FencedResource, process: Int, key: String, token: FencingToken, paused: Bool) async {
        _ = await record(process, .write(key: key, token: token, paused: paused)) {
            try resource.write(key, token: token)
        } outcome: { _ in .done }
    }

    func complete(_ client: BatonClient, process: Int, job: JobID, token: FencingToken) async {
        _ = await record(process, .complete(job, token: token)) {
            try await client.completeJob(job, token: token)
        } outcome: { _ in .done }
    }
}
