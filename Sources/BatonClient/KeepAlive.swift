/// Runs `body` while `renew` is called every `interval` in the background.
///
/// The lease is taken to be valid until `validUntil`, and for `validFor` after the *sending* of each
/// successful renew. If renewing fails for good (`renew` throws a non-retriable error, or retriable
/// ones keep coming until the lease is no longer valid), `body` is cancelled and `.leaseLost` is thrown
/// once it has stopped. Otherwise the result of `body` is returned and renewing stops.
func withKeepAlive<T: Sendable>(
    interval: Duration, validUntil: ContinuousClock.Instant, validFor: Duration, what: String,
    renew: @escaping @Sendable () async throws -> Void,
    body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            let clock = ContinuousClock()
            var validUntil = validUntil
            while true {
                try await Task.sleep(for: interval)
                let sent = clock.now
                do {
                    try await renew()
                    validUntil = sent + validFor
                } catch let error as BatonClientError where error.isRetriable && clock.now + interval / 4 < validUntil {
                    continue
                } catch is CancellationError {
                    return nil
                } catch {
                    throw BatonClientError.leaseLost("\(what): \(error)")
                }
            }
        }
        defer { group.cancelAll() }
        do {
            while let next = try await group.next() {
                if let result = next { return result }
            }
        } catch {
            group.cancelAll()
            // Let the body stop before the caller hears the lease is gone.
            while (try? await group.next()) != nil {}
            throw error
        }
        throw CancellationError()
    }
}

/// Until when a lease granted between `sent` and `received` is surely valid on the client's clock.
///
/// A grant answered at once started after `sent`, so the lease lasts at least until `sent + ttl`.
/// A grant that waited in line (the answer took more than a tenth of the TTL) started shortly before
/// `received`; it is counted from `received`, less 10 % for the answer's trip.
func leaseValidUntil(sent: ContinuousClock.Instant, received: ContinuousClock.Instant, ttl: Duration) -> ContinuousClock.Instant {
    received - sent < ttl / 10 ? sent + ttl : received + ttl * 0.9
}
