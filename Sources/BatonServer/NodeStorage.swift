import BatonCore
import BatonRaft
import NIOCore

/// Where a node's log and snapshots go: a data directory (`DurableLog`) or memory (`MemoryLog`).
/// The node's shell hands it Raft's durable parts in order and waits for each to complete.
protocol NodeStorage: Sendable {
    /// Whether what it holds survives the process.
    var isDurable: Bool { get }

    /// Whether `persist` has nothing to do and completes at once (the node then goes on without
    /// calling it, and without the future it would return).
    var persistsAtOnce: Bool { get }

    /// Makes a Ready's durable part durable, in submission order with everything else; the future
    /// succeeds (on `loop`) once it is (synced, when `sync` says so).
    func persist(snapshot: Snapshot?, entries: [LogEntry], hardState: HardState?, sync: Bool, on loop: any EventLoop)
        -> EventLoopFuture<Void>

    /// Saves a snapshot of `machine`, which has applied everything up to `index` (an entry of `term`),
    /// and drops the log it covers.
    func snapshot(_ machine: StateMachine, at index: LogIndex, term: Term, on loop: any EventLoop) -> EventLoopFuture<Snapshot>

    /// Finishes what was submitted and stops.
    func close() async
}

/// A log in memory, as etcd-io/raft's `MemoryStorage`: a node without a data directory (`baton dev`)
/// runs the same code as a durable one, and loses everything when it stops. Raft keeps the entries
/// itself until a snapshot compacts them, so nothing is stored here.
struct MemoryLog: NodeStorage {
    var isDurable: Bool { false }
    var persistsAtOnce: Bool { true }

    func persist(snapshot: Snapshot?, entries: [LogEntry], hardState: HardState?, sync: Bool, on loop: any EventLoop)
        -> EventLoopFuture<Void>
    {
        loop.makeSucceededVoidFuture()
    }

    func snapshot(_ machine: StateMachine, at index: LogIndex, term: Term, on loop: any EventLoop) -> EventLoopFuture<Snapshot> {
        loop.makeSucceededFuture(Snapshot(index: index, term: term, data: Array(machine.snapshot().readableBytesView)))
    }

    func close() async {}
}
