import BatonCore
import BatonProtocol
import BatonRaft
import BatonStorage
import BatonTestSupport
import Foundation
import Logging
import NIOPosix
import Synchronization
import Testing

@testable import BatonServer

/// Keeps every message logged through it, for tests that check what an operator would see.
final class CapturedLog: Sendable {
    let messages = Mutex<[(level: Logger.Level, text: String)]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let text = "\(event.message) \((event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })"
            log.messages.withLock { $0.append((event.level, text)) }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct DurableLogTests {
    func write(slowSync: Duration, log: CapturedLog) async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: "\(dir)/wal")
        _ = try wal.recover(after: .zero)
        let durable = DurableLog(
            wal: wal, snapshots: try SnapshotStore(directory: "\(dir)/snapshots"), metrics: nil, logger: log.logger,
            slowSync: slowSync)
        let entries = [1, 2].map { LogEntry(term: Term(1), index: LogIndex($0), data: TimedInput(.tick, at: Timestamp(milliseconds: $0)).encode()) }
        try await durable.persist(
            snapshot: nil, entries: entries, hardState: HardState(term: Term(1)), sync: true, on: MultiThreadedEventLoopGroup.singleton.next()
        ).get()
        await durable.close()
    }

    /// A group commit slower than the threshold is logged as a warning naming how long it took and
    /// how many entries waited for it; a fast one logs nothing.
    @Test func slowSyncIsLoggedAsAWarning() async throws {
        let slow = CapturedLog()
        try await write(slowSync: .zero, log: slow)
        let warnings = slow.messages.withLock { $0.filter { $0.level == .warning }.map(\.text) }
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("slow log write") == true && warnings.first?.contains("entries=2") == true)

        let fast = CapturedLog()
        try await write(slowSync: .seconds(3600), log: fast)
        #expect(fast.messages.withLock { $0.filter { $0.level == .warning } }.isEmpty)
    }
}
