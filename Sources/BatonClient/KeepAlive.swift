/// Runs `body` while `renew` is called every `interval` in the background.
///
/// If renewing fails for good (`renew` throws a non-retriable error, or retriable ones keep coming until
/// `validFor` has passed since the last success), `body` is cancelled and `.leaseLost` is thrown
/// once it has stopped. Otherwise the result of `body` is returned and renewing stops.
func withKeepAlive<T: Sendable>(
    interval: Duration, validFor: Duration, what: String,
    renew: @escaping @Sendable () async throws -> Void,
    body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            let clock = ContinuousClock()
            var validUntil = clock.now + validFor
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
