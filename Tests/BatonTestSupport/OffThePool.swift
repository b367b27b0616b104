import Foundation

/// Runs long CPU-bound test work (seeded simulations) on a thread of its own, one job at a time.
///
/// Swift's cooperative pool has as many threads as cores (two here). A synchronous loop of minutes
/// on it holds one of them, and every async test beside it (a real node, a client) waits for a
/// thread to resume on: a parallel `swift test` then fails tests on timeouts that are only
/// starvation. Off the pool, the operating system shares the cores fairly instead. One job at a
/// time, so at least one core stays for everything else.
///
/// `body` must not record issues (`#expect` needs the test's task): return what to check.
public enum OffThePool {
    private static let queue = DispatchQueue(label: "baton.tests.off-the-pool")

    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}
