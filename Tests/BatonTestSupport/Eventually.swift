import Testing

/// Waits for a condition of a real system (a process, a cluster, a client) instead of for a time:
/// asks `probe` every `every` until it gives a value, and returns it. `timeout` guards against a
/// hang, it is not a bound on speed: when it passes, the wait is recorded as a failure naming
/// `what` (with the last probe's error, if it threw) and `EventuallyTimedOut` is thrown, so the
/// test stops there. A probe that throws is asked again (the system may not be up yet), unless
/// what it throws is a failed `#require`: that one ends the wait.
public func eventually<T>(
    _ what: String, timeout: Duration = .seconds(60), every: Duration = .milliseconds(50),
    sourceLocation: SourceLocation = #_sourceLocation, _ probe: () async throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try await probe() { return value }
            lastError = nil
        } catch let failed as ExpectationFailedError {
            throw failed  // a `#require` in the probe failed: recorded already, and final
        } catch {
            lastError = error
        }
        guard clock.now < deadline else {
            Issue.record("\(what): not so after \(timeout)\(lastError.map { " (last: \($0))" } ?? "")", sourceLocation: sourceLocation)
            throw EventuallyTimedOut(what: what)
        }
        try await Task.sleep(for: every)
    }
}

/// `eventually` for a condition that has no value to return.
public func eventually(
    _ what: String, timeout: Duration = .seconds(60), every: Duration = .milliseconds(50),
    sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    _ = try await eventually(what, timeout: timeout, every: every, sourceLocation: sourceLocation) { try await condition() ? true : nil }
}

/// Thrown by `eventually` when its condition did not come true in time (already recorded as an issue).
public struct EventuallyTimedOut: Error, CustomStringConvertible {
    public var what: String
    public var description: String { "timed out waiting: \(what)" }
}

/// A wait that may come to nothing, for a step that is optional (a nemesis waiting a moment for a
/// new leader): asks `probe` every `every` until it gives a value or `timeout` passes, and then
/// returns nil without recording anything. A test's premise waits with `eventually` instead.
public func within<T>(
    _ timeout: Duration, every: Duration = .milliseconds(50), _ probe: () async throws -> T?
) async throws -> T? {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if let value = try? await probe() { return value }
        guard clock.now < deadline else { return nil }
        try await Task.sleep(for: every)
    }
}
