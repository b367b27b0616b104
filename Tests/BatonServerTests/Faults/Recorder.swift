import BatonClient
import BatonProtocol
import NIOConcurrencyHelpers

/// Runs operations through the client library and records each in a `History`: the time it was
/// sent, the time its answer arrived, and the outcome. A refusal by the node is a definite failure;
/// any other error (no answer in time, the connection lost for good) leaves the outcome unknown.
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
        case .failure(let error as BatonClientError) where error.serverCode != nil: op = .refused("\(error)")
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
}
