import BatonClient
import Testing

extension BatonClient {
    /// Waits until `count` waiters are queued on lock `key` (as this client reads it): the point a
    /// test needs before it moves on with a waiter in line.
    public func waitForWaiters(
        _ count: Int, on key: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        try await eventually("\(count) waiter(s) queued on '\(key)'", every: .milliseconds(10), sourceLocation: sourceLocation) {
            try await self.getLock(key)?.waiters.count == count
        }
    }
}
