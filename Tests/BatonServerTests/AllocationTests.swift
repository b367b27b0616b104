import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The heap allocations a node makes per request, counted in a `baton dev` process as it runs
/// (`Tests/AllocationCounter/malloc-counter.c`, preloaded), under requests from a client in this
/// process: every feature is paid per request, and an allocation is the first cost that grows
/// unnoticed. Each bound is what this build measured when it was set plus a little room; a change
/// that allocates more per cycle fails here, and the commit that raises a bound says why.
///
/// The counts are of this (debug) build: a release build allocates fewer (BENCHMARKS.md has both).
/// What the node allocates while idle (its ticks) in the same time is measured first and taken off.
@Suite(.timeLimit(.minutes(3))) struct AllocationTests {
    /// Allocations per lock cycle (LOCK_ACQUIRE granted, LOCK_RELEASE), at most.
    static let lockCycleBound = 133.0
    /// Allocations per job cycle (JOB_ADD, JOB_CLAIM, JOB_COMPLETE), at most.
    static let jobCycleBound = 282.0
    static let cycles = 2_000

    /// A node under the counter, and a way to read its counts.
    struct CountedNode {
        let process: Process
        let counts: String
        let port: Int

        /// The node's allocations so far: asks it (SIGURG) and waits for the answer.
        func allocations() async throws -> Int {
            let before = try read()?.dumps ?? 0
            kill(process.processIdentifier, SIGURG)
            return try await eventually("the node writes its counts", every: .milliseconds(5)) {
                try read().flatMap { $0.dumps > before ? $0.allocations : nil }
            }
        }

        private func read() throws -> (dumps: Int, allocations: Int)? {
            guard let text = try? String(contentsOfFile: counts, encoding: .utf8) else { return nil }
            let fields = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            return fields.count == 3 ? (fields[0], fields[1]) : nil
        }
    }

    static func withCountedNode(_ body: (CountedNode, BatonClient) async throws -> Void) async throws {
        let dir = temporaryDataDirectory()
        try Unprivileged.makeDirectory(dir)
        chmod(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("AllocationCounter/malloc-counter.c").path
        let library = "\(dir)/libmalloc-counter.so"
        let compiler = try #require(["/opt/swift/usr/bin/clang", "/usr/bin/clang", "/usr/bin/cc"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let built = try await offPool { try runTool(compiler, ["-O2", "-shared", "-fPIC", "-o", library, source]) }
        try #require(built.status == 0, "the counter does not build: \(built.output)")
        chmod(library, 0o755)
        // Made here for the node's user: setpriv, preloaded too, would otherwise make it as root.
        #expect(FileManager.default.createFile(atPath: "\(dir)/counts", contents: nil))
        Unprivileged.handOver("\(dir)/counts")
        let port = try await freePort()
        let process = try launchNode(
            ["dev", "--port", "\(port)", "--no-metrics", "--log-level", "error"],
            environment: ["LD_PRELOAD": library, "BATON_MALLOC_COUNTS": "\(dir)/counts"])
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try await waitUntilListening(process, port: port)
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "allocations"))
        defer { Task { await client.shutdown() } }
        try await body(CountedNode(process: process, counts: "\(dir)/counts", port: port), client)
    }

    /// Allocations per cycle of `cycle`, run `cycles` times after as many to warm up, less what the
    /// node allocates idle in the same time.
    static func perCycle(_ node: CountedNode, _ cycle: (Int) async throws -> Void) async throws -> Double {
        for i in 0..<cycles { try await cycle(i) }
        let idleStart = try await node.allocations()
        let idleFrom = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(500))  // the idle sample: an input, not a bound
        let idleEnd = try await node.allocations()
        let idlePerSecond = Double(idleEnd - idleStart) / (ContinuousClock.now - idleFrom).seconds
        let start = try await node.allocations()
        let from = ContinuousClock.now
        for i in cycles..<(2 * cycles) { try await cycle(i) }
        let end = try await node.allocations()
        let idle = idlePerSecond * (ContinuousClock.now - from).seconds
        let result = (Double(end - start) - idle) / Double(cycles)
        print("allocations: \(String(format: "%.2f", result)) per cycle (\(end - start) in \(cycles) cycles, \(Int(idle)) idle taken off)")
        return result
    }

    @Test func aLockCycleStaysWithinItsAllocations() async throws {
        try await Self.withCountedNode { node, client in
            let perCycle = try await Self.perCycle(node) { i in
                guard case .granted(let token, _, _) = try await client.acquireLock("k\(i % 100)", ttl: .seconds(30)) else {
                    throw BatonClientError.connectFailed("the premise: lock k\(i % 100) was granted")
                }
                try await client.releaseLock("k\(i % 100)", token: token)
            }
            #expect(perCycle > 2, "the premise: the counter counts the node's allocations (\(perCycle))")
            #expect(perCycle <= Self.lockCycleBound, "a lock cycle allocates \(perCycle) times, bound \(Self.lockCycleBound)")
        }
    }

    @Test func aJobCycleStaysWithinItsAllocations() async throws {
        try await Self.withCountedNode { node, client in
            let perCycle = try await Self.perCycle(node) { i in
                _ = try await client.addJob(JobSpec(type: "a", payload: [UInt8(i & 0xFF)]))
                let job = try #require(try await client.claimJob(types: ["a"]), "the premise: the job just added is claimed")
                try await client.completeJob(job.id, token: job.token)
            }
            #expect(perCycle > 2, "the premise: the counter counts the node's allocations (\(perCycle))")
            #expect(perCycle <= Self.jobCycleBound, "a job cycle allocates \(perCycle) times, bound \(Self.jobCycleBound)")
        }
    }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
