import BatonCore
import BatonRaft
import BatonStorage
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The disk side of a durable node: the write-ahead log and the snapshots, driven from the event loop
/// and worked on two threads of their own, so the loop never waits for a disk.
final class DurableLog: Sendable {
    /// The log is touched by one write task at a time (the runtime keeps one in flight) and by the
    /// snapshot task's compaction; the mutex orders the two.
    private let wal: Mutex<WriteAheadLog>
    private let snapshots: SnapshotStore
    private let pool: NIOThreadPool

    init(wal: sending WriteAheadLog, snapshots: SnapshotStore) {
        self.wal = Mutex(wal)
        self.snapshots = snapshots
        self.pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
    }

    /// Encodes `inputs` as entries `first`, `first + 1`, … and writes and syncs them together.
    func write(_ inputs: [TimedInput], startingAt first: LogIndex, on loop: any EventLoop) -> EventLoopFuture<Void> {
        pool.runIfActive(eventLoop: loop) {
            var entries: [LogEntry] = []
            entries.reserveCapacity(inputs.count)
            for (i, input) in inputs.enumerated() {
                entries.append(LogEntry(term: Term(1), index: LogIndex(first.rawValue + UInt64(i)), data: input.encode()))
            }
            try self.wal.withLock { wal in
                wal.append(entries)
                try wal.commit()
            }
        }
    }

    /// Writes a snapshot of `machine` (which has applied everything up to `index`), then deletes the
    /// log segments it covers. Returns the snapshot file's size.
    func snapshot(_ machine: StateMachine, at index: LogIndex, on loop: any EventLoop) -> EventLoopFuture<Int> {
        try? wal.withLock { try $0.rotate() }  // later entries start a new segment, so old ones can go
        return pool.runIfActive(eventLoop: loop) {
            let bytes = Array(machine.snapshot().readableBytesView)
            let size = try self.snapshots.save(Snapshot(index: index, term: Term(1), data: bytes))
            try self.wal.withLock { try $0.compact(upTo: index) }
            return size
        }
    }

    func close() async {
        try? await pool.shutdownGracefully()
    }
}

/// A node's state after start-up: recovered from disk, or new.
struct RecoveredState: Sendable {
    var machine: StateMachine
    var log: DurableLog?
    var appliedIndex: LogIndex
    var snapshotIndex: LogIndex

    /// Reads the newest good snapshot and replays the log after it. Fails, naming the file, when the
    /// log is corrupt anywhere but in its torn tail.
    static func recover(_ configuration: NodeConfiguration, logger: Logger) throws -> RecoveredState {
        let fresh = StateMachine(configuration: configuration.stateMachine)
        guard let directory = configuration.dataDirectory else {
            return RecoveredState(machine: fresh, log: nil, appliedIndex: .zero, snapshotIndex: .zero)
        }
        let started = ContinuousClock.now
        let store = try SnapshotStore(directory: "\(directory)/snapshots")
        var machine = fresh
        var snapshotIndex = LogIndex.zero
        if let snapshot = try store.loadNewest(skipped: { logger.warning("skipping a damaged snapshot", metadata: ["error": "\($0)"]) }) {
            machine = try StateMachine(restoring: ByteBuffer(bytes: snapshot.data), configuration: configuration.stateMachine)
            snapshotIndex = snapshot.index
        }
        let wal = try WriteAheadLog(
            directory: "\(directory)/wal", segmentSize: configuration.segmentSizeBytes, syncMode: configuration.sync)
        let recovered = try wal.recover(after: snapshotIndex)
        var expected = snapshotIndex.rawValue + 1
        for entry in recovered.entries {
            guard entry.index.rawValue == expected else {
                throw StorageError("the log jumps from index \(expected - 1) to \(entry.index) after the snapshot at \(snapshotIndex)")
            }
            let timed = try TimedInput.decode(entry.data)
            _ = machine.apply(timed.input, at: timed.time)
            expected += 1
        }
        if recovered.truncatedBytes > 0 {
            logger.warning("cut a torn write off the end of the log", metadata: ["bytes": "\(recovered.truncatedBytes)"])
        }
        logger.info(
            "recovered",
            metadata: [
                "snapshot.index": "\(snapshotIndex)", "log.entries": "\(recovered.entries.count)",
                "duration": "\(ContinuousClock.now - started)",
            ])
        return RecoveredState(
            machine: machine, log: DurableLog(wal: wal, snapshots: store), appliedIndex: LogIndex(expected - 1),
            snapshotIndex: snapshotIndex)
    }
}
