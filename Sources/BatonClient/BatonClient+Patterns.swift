import BatonClientCore
import BatonProtocol
import Foundation

/// A held lock, as `withLock` gives it to its body.
public struct LockLease: Sendable, Hashable {
    public var key: String
    /// The fencing token of this grant. Pass it to whatever the lock guards, and have that refuse
    /// writes carrying a smaller token than one it has seen.
    public var token: FencingToken
    public var ttl: Duration
}

extension BatonClient {
    /// Takes the lock `key`, runs `body` while renewing the lease every third of `ttl`, then releases it.
    ///
    /// - If the lock is still held by someone else after `wait`, throws `.lockBusy`.
    /// - If the lease may end while `body` runs (a renew is refused, or no renew is confirmed in
    ///   time, whatever the reason), `body` is cancelled before the lease can have ended on the
    ///   node, and `.leaseLost` is thrown. A grant answered late (a long wait, a failover) is renewed
    ///   before `body` starts, so `body` never runs on a lease that may already be over.
    /// - The lock is released when `body` returns or throws.
    public func withLock<T: Sendable>(
        _ key: String, ttl: Duration, wait: Duration = .zero, owner: String? = nil,
        _ body: @escaping @Sendable (LockLease) async throws -> T
    ) async throws -> T {
        let (acquisition, validUntil) = try await acquireLockCounted(key, ttl: ttl, wait: wait, owner: owner)
        switch acquisition {
        case .busy(let holder, _):
            throw BatonClientError.lockBusy(key: key, holder: holder)
        case .granted(let token, _, _):
            let lease = LockLease(key: key, token: token, ttl: ttl)
            do {
                let result = try await withKeepAlive(
                    lease: ClientLease(ttl: ttl, validUntil: validUntil), what: "lock '\(key)'",
                    renew: { try await self.renewLockCounted(key, token: token, ttl: ttl).validUntil },
                    body: { try await body(lease) })
                try? await releaseLock(key, token: token)
                return result
            } catch {
                try? await releaseLock(key, token: token)
                throw error
            }
        }
    }

    /// Runs `body` every `interval` on exactly one of the replicas that call this with the same `name`.
    ///
    /// The replicas queue for the lock `periodic/<name>`; its holder runs `body` at each multiple of
    /// `interval` (wall-clock aligned, so a new holder keeps the old one's rhythm) and keeps the lease
    /// renewed. Runs never overlap: a run that takes longer than `interval` delays the next one. When
    /// the holder dies, the next replica in line takes over once the lease (`ttl`) runs out. Errors
    /// thrown by `body` are logged and the schedule goes on. Returns when the calling task is cancelled.
    ///
    /// Prefer a schedule (`putSchedule`) when the work can be a job: the cluster then fires it once
    /// per slot even while every replica is down (slots inside its catch-up window run late), counts
    /// what it missed, and the runs get the job's retries and dead-lettering. `runPeriodic` is for
    /// work that must run in this process, where a run missed while no replica held the lock does
    /// not matter (docs/concepts.md, "Schedules").
    public func runPeriodic(
        _ name: String, every interval: Duration, ttl: Duration = .seconds(10),
        _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        let key = "periodic/\(name)"
        let logger = configuration.logger
        while !Task.isCancelled {
            do {
                try await withLock(key, ttl: ttl, wait: max(interval, ttl)) { _ in
                    while true {
                        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                        try await Task.sleep(for: Pacing.untilNextSlot(every: interval, wallMilliseconds: now))
                        do {
                            try await body()
                        } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            logger.warning("periodic task failed", metadata: ["task": "\(name)", "error": "\(error)"])
                        }
                    }
                }
            } catch BatonClientError.lockBusy {
                continue
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.info("periodic task lost its lock", metadata: ["task": "\(name)", "error": "\(error)"])
                try? await Task.sleep(for: Pacing.afterLostLock)
            }
        }
    }
}
