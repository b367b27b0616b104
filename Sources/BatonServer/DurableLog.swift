import BatonCore
import BatonNode
import BatonRaft
import BatonStorage
import Logging
import Metrics
import NIOCore
import NIOPosix
import Foundation
import Synchronization

/// The disk side of a durable node: the write-ahead log, written by a thread of its own, and
/// snapshots, written by a thread pool, so the event loop never waits for a disk.
///
/// Group commit: the writer thread takes everything submitted since its last write, writes it with
/// one `write` and syncs it with one `fdatasync`, completes those submissions in order, and goes
/// straight back for what gathered meanwhile.
final class DurableLog: NodeStorage, @unchecked Sendable {
    // Sendable by construction: `queue` and `closed` are only touched with `condition` locked; `wal`
    // only by the writer thread (compaction is queued to it like a write); `snapshots`, `logger` and
    // the metrics are Sendable, and the other stored properties are constants.
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var closed = false
    private let wal: WriteAheadLog
    private let snapshots: SnapshotStore
    private let pool: NIOThreadPool
    private var thread: Thread?
    /// Bytes the writer has written to the log so far; read on the event loop to decide on a snapshot.
    private let written = Atomic<Int>(0)
    private let fsyncTimer: Metrics.Timer?
    private let batchSize: Recorder?
    private let logger: Logger
    /// A group commit slower than this is logged as a warning: every answer in it waited that long.
    private let slowSync: Duration

    private enum Job {
        /// A Raft Ready's durable part: a received snapshot, entries (replacing any at their indexes), hard state.
        case persist(Snapshot?, [LogEntry], HardState?, sync: Bool, EventLoopPromise<Void>)
        case compact(upTo: LogIndex)
        case rotate
    }

    init(wal: WriteAheadLog, snapshots: SnapshotStore, metrics: NodeMetrics?, logger: Logger, slowSync: Duration = .seconds(1)) {
        self.wal = wal
        self.snapshots = snapshots
        self.logger = logger
        self.slowSync = slowSync
        self.fsyncTimer = metrics?.fsyncTimer
        self.batchSize = metrics?.batchSize
        self.pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "baton-wal"
        self.thread = thread
        thread.start()
    }

    private func submit(_ job: Job) {
        condition.lock()
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Makes a Raft Ready's durable part durable, in submission order with everything else; the
    /// future succeeds once it is synced (at once for an empty one, but only after what came before).
    /// Without `sync` (a Ready whose commit index alone moved) it is only written, and synced with
    /// whatever comes next; its future still waits for everything before it to be synced.
    func persist(
        snapshot: Snapshot?, entries: [LogEntry], hardState: HardState?, sync: Bool, on loop: any EventLoop
    ) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        submit(.persist(snapshot, entries, hardState, sync: sync, promise))
        return promise.futureResult
    }

    var isDurable: Bool { true }
    var persistsAtOnce: Bool { false }

    /// Bytes written to the log since this node started: everything the futures completed so far covers.
    var bytesWritten: Int { written.load(ordering: .acquiring) }

    private func writerLoop() {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            if queue.isEmpty && closed {
                condition.unlock()
                return
            }
            let jobs = queue
            queue.removeAll()
            condition.unlock()

            var promises: [EventLoopPromise<Void>] = []
            var failure: (any Error)?
            var entries = 0
            var sync = false
            for job in jobs {
                do {
                    switch job {
                    case .persist(let snapshot, let newEntries, let hardState, let mustSync, let promise):
                        promises.append(promise)
                        if mustSync { sync = true }
                        if let snapshot {
                            _ = try snapshots.save(snapshot)
                            try wal.commit()
                            try wal.rotate()
                            try wal.compact(upTo: snapshot.index)
                        }
                        entries += newEntries.count
                        if !newEntries.isEmpty { wal.append(newEntries) }
                        if let hardState { wal.append(hardState) }
                    case .compact(let upTo):
                        try wal.compact(upTo: upTo)
                    case .rotate:
                        try wal.commit()
                        try wal.rotate()
                    }
                } catch {
                    failure = error
                }
            }
            let started = ContinuousClock.now
            do {
                try wal.commit(sync: sync)
            } catch {
                failure = error
            }
            written.store(wal.bytesWritten, ordering: .releasing)
            if entries > 0 {
                let took = ContinuousClock.now - started
                let (s, atto) = took.components
                fsyncTimer?.recordNanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
                batchSize?.record(entries)
                if took >= slowSync {
                    logger.warning(
                        "slow log write: the disk took longer than \(slowSync) to write and sync a batch",
                        metadata: ["duration": "\(took)", "entries": "\(entries)"])
                }
            }
            for promise in promises {
                if let failure { promise.fail(failure) } else { promise.succeed() }
            }
        }
    }

    /// Writes a snapshot of `machine` (which has applied everything up to `index`), then has the
    /// writer delete the log segments it covers. Returns the snapshot file's size.
    func snapshot(_ machine: StateMachine, at index: LogIndex, term: Term, on loop: any EventLoop) -> EventLoopFuture<Snapshot> {
        submit(.rotate)  // later entries start a new segment, so the older ones can go
        return pool.runIfActive(eventLoop: loop) {
            let snapshot = Snapshot(index: index, term: term, data: Array(machine.snapshot().readableBytesView))
            // The log is compacted only once the snapshot that covers it is durable in place.
            if case .superseded(let newer) = try self.snapshots.save(snapshot) { throw SnapshotSuperseded(newer: newer) }
            self.submit(.compact(upTo: index))
            return snapshot
        }
    }

    private func stopWriter() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    /// Finishes what was submitted and stops the writer.
    func close() async {
        stopWriter()
        while thread?.isFinished == false { try? await Task.sleep(for: .milliseconds(2)) }
        try? await pool.shutdownGracefully()
    }
}

/// A local snapshot was not saved: the leader's snapshot at `newer`, installed meanwhile, covers it.
struct SnapshotSuperseded: Error {
    var newer: LogIndex
}

/// A node's state after start-up: recovered from its data directory, or new (in memory).
struct RecoveredState: Sendable {
    var node: Node.Recovered
    var storage: any NodeStorage

    /// Reads the newest good snapshot and the log after it. Fails, naming the file, when the log is
    /// corrupt anywhere but in its torn tail. The entries are applied again as Raft hands them out
    /// committed (a cluster of one commits them as soon as it has elected itself).
    static func recover(_ configuration: NodeConfiguration, logger: Logger, metrics: NodeMetrics? = nil) throws -> RecoveredState {
        guard let directory = configuration.dataDirectory else {
            return RecoveredState(node: .new(configuration.stateMachine), storage: MemoryLog())
        }
        let started = ContinuousClock.now
        let store = try SnapshotStore(directory: "\(directory)/snapshots")
        var machine = StateMachine(configuration: configuration.stateMachine)
        var newest = Snapshot.empty
        if let snapshot = try store.loadNewest(skipped: { logger.warning("skipping a damaged snapshot", metadata: ["error": "\($0)"]) }) {
            machine = try StateMachine(restoring: ByteBuffer(bytes: snapshot.data), configuration: configuration.stateMachine)
            newest = snapshot
        }
        let wal = try WriteAheadLog(
            directory: "\(directory)/wal", segmentSize: configuration.segmentSizeBytes, syncMode: configuration.sync)
        let recovered = try wal.recover(after: newest.index)
        // The snapshot and the log must continue each other: the log starts right after the
        // snapshot and has no holes. A snapshot skipped as damaged, with the log already compacted
        // past the one before it, fails here, plainly.
        var expected = newest.index.rawValue + 1
        for entry in recovered.entries {
            guard entry.index.rawValue == expected else {
                throw StorageError(
                    .gap,
                    "the log jumps from index \(expected - 1) to \(entry.index) after the snapshot at \(newest.index): the snapshot and the log do not continue each other; restore the data directory from a member (docs/operating.md)")
            }
            expected += 1
        }
        if recovered.truncatedBytes > 0 {
            logger.warning("cut a torn write off the end of the log", metadata: ["bytes": "\(recovered.truncatedBytes)"])
        }
        logger.info(
            "recovered",
            metadata: [
                "snapshot.index": "\(newest.index)", "log.entries": "\(recovered.entries.count)",
                "duration": "\(ContinuousClock.now - started)",
            ])
        let log = DurableLog(
            wal: wal, snapshots: store, metrics: metrics, logger: logger,
            slowSync: .milliseconds(configuration.slowLogWriteMilliseconds))
        return RecoveredState(
            node: Node.Recovered(hardState: recovered.hardState, snapshot: newest, machine: machine, entries: recovered.entries),
            storage: log)
    }
}
