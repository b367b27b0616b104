import BatonClientCore
import NIOConcurrencyHelpers

/// A lease counted on this process's monotonic clock.
typealias ClientLease = LeaseClock<ContinuousClock.Instant>

/// Runs `body` while its lease holds, renewing the lease in the background; the rules (when to
/// renew, when to stop, when a late grant is confirmed first) are `LeaseClock`'s, and this keeps
/// only the tasks.
///
/// After each renewal the lease surely lasts until the instant that renewal returns (its
/// `leaseLeft` counted from when it was sent). The body runs only while the lease `holds`; past
/// `stopAt` it is cancelled, whether the renewals failed or are merely slow (a paused leader, a
/// slow network), and `.leaseLost` is thrown once it has stopped. A grant that `needsConfirming`
/// is first renewed, and the body starts only if that renewal succeeds.
func withKeepAlive<T: Sendable>(
    lease: ClientLease, what: String,
    renew: @escaping @Sendable () async throws -> ContinuousClock.Instant,
    body: @escaping @Sendable () async throws -> T
) async throws -> T {
    var lease = lease
    if lease.needsConfirming(at: .now) {
        do {
            lease.renewed(until: try await renew())
        } catch {
            throw BatonClientError.leaseLost("\(what): the grant came late and could not be confirmed: \(error)")
        }
        guard lease.holds(at: .now) else {
            throw BatonClientError.leaseLost("\(what): the renewal that confirmed the grant came too late")
        }
    }
    let renewEvery = lease.renewEvery
    let deadline = NIOLockedValueBox(lease)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        // The renewals: each moves the deadline on.
        group.addTask {
            while true {
                do {
                    try await Task.sleep(for: renewEvery)
                    let until = try await renew()
                    deadline.withLockedValue { $0.renewed(until: until) }
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
                let lease = deadline.withLockedValue { $0 }
                if !lease.holds(at: .now) {
                    throw BatonClientError.leaseLost("\(what): no renewal was confirmed in time")
                }
                do {
                    try await Task.sleep(until: lease.stopAt, clock: .continuous)
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
