import BatonRaft

/// Whether a tick this node proposed is still on its way through the log, so a leader proposes one
/// tick at a time.
///
/// A tick is pending only in the term it was proposed in. A leader deposed before its tick was
/// committed may lose it (the next leader's entries take its place), and it may be elected again
/// before any other tick is applied: had the tick stayed pending, that leader would never propose
/// another, and no lease, wait or run-after time would end while it led.
package struct PendingTick: Sendable, Equatable {
    private var term: Term?

    /// A tick proposed in `current` is still to be applied.
    package func isPending(in current: Term) -> Bool { term == current }

    package mutating func proposed(in current: Term) { term = current }

    /// A tick was applied (this node's or another leader's): time has passed in the state machine.
    package mutating func applied() { term = nil }
}
