import Testing

/// Marks a test that needs much of the machine in real time: real leases renewed on time, clusters
/// of real processes under faults or load, minutes of CPU-bound simulation. Heavy tests run one at
/// a time across every suite, also when `swift test` runs in parallel; light tests run beside them.
///
/// Why: on two cores, two heavy tests at once starve each other. A simulation holds a core for
/// minutes; a cluster's members and clients then miss renewals by seconds, and a lease test fails
/// on scheduling alone, which says nothing about Baton. `.serialized` orders only one suite's own
/// tests, so it cannot keep a simulation apart from a cluster test in another target.
///
/// The wait for a turn is outside each test's `.timeLimit`: the scope wraps a test function (all
/// its cases), which Swift Testing runs outside the time limit it applies to each case.
public struct Heavy: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// One scope per test function; none for a suite (its tests take their turns one by one) and
    /// none per case (a case's scope would count the wait against its time limit).
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite || testCase != nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await HeavyTurns.shared.take()
        do {
            try await function()
        } catch {
            await HeavyTurns.shared.give()
            throw error
        }
        await HeavyTurns.shared.give()
    }
}

extension Trait where Self == Heavy {
    /// This test (or every test of this suite) takes its turn among the heavy tests.
    public static var heavy: Self { Self() }
}

/// Turns, first come first served: one heavy test holds the turn at a time.
actor HeavyTurns {
    static let shared = HeavyTurns()
    private var taken = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func take() async {
        guard taken else {
            taken = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the turn to the next in line, if any (it stays taken).
    func give() {
        if waiting.isEmpty {
            taken = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
