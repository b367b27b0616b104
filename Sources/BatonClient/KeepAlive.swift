import NIOConcurrencyHelpers

/// Runs `body` while its lease holds, renewing the lease every third of `ttl` in the background.
///
/// The lease surely lasts until `validUntil` on this machine's clock, and after each renewal until
/// the instant that renewal returns (its `leaseLeft` counted from when it was sent). The body runs
/// only while that instant is more than a tenth of `ttl` away (room for the two machines' clocks to
/// differ in rate and for the body to notice its cancellation); past that it is cancelled, whether
/// the renewals failed or are merely slow (a paused leader, a slow network), and `.leaseLost` is
/// thrown once it has stopped. A lease that is already close to its end when this is called (its
/// grant was answered late) is first renewed, and the body starts only if that renewal succeeds:
/// a renewal that succeeds proves the lease never ended in between.
func withKeepAlive<T: Sendable>(
    ttl: Duration, validUntil: ContinuousClock.Instant, what: String,
    renew: @escaping @Sendable () async throws -> ContinuousClock.Instant,
    body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let margin = ttl / 10
    var validUntil = validUntil
    if validUntil - .now < ttl / 2 {
        do {
            validUntil = try await renew()
        } catch {
            throw BatonClientError.leaseLost("\(what): the grant came late and could not be confirmed: \(error)")
        }
        guard validUntil - margin > .now else {
            throw BatonClientError.leaseLost("\(what): the renewal that confirmed the grant came too late")
        }
    }
    let deadline = NIOLockedValueBox(validUntil)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        // The renewals: each moves the deadline on.
        group.addTask {
            while true {
                do {
                    try await Task.sleep(for: ttl / 3)
                    let until = try await renew()
                    deadline.withLockedValue { $0 = max($0, until) }
                } catch let error as BatonClientError where error.isRetriable {
                    continue  // the deadline decides when to give up
                } catch is CancellationError {
                    return nil
                } catch {
                    throw BatonClientError.leaseLost("\(what): \(error)")
                }
            }
        }
        // The deadline: the body stops before the lease can have ended on the node.
        group.addTask {
            while true {
                let stopAt = deadline.withLockedValue { $0 } - margin
                if ContinuousClock.now >= stopAt {
                    throw BatonClientError.leaseLost("\(what): no renewal was confirmed in time")
                }
                do {
                    try await Task.sleep(until: stopAt, clock: .continuous)
                } catch {
                    return nil
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
