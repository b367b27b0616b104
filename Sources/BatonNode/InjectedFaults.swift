/// Faults that were once bugs, put back on purpose so the simulator can show that its invariants
/// catch them (the negative-control seeds). All off in every node that serves; only tests set them.
package struct InjectedFaults: Sendable, Hashable {
    /// The cluster's clock before issue 16: a leader's own stamps raised the floor its next term
    /// counts from, even stamps of proposals that were never committed (a paused leader stamps on
    /// after it was deposed), so a re-elected leader could cut a lease short.
    package var clockFloorsOwnStamps = false
    /// Reads before issue 35: answered once the read index (the commit index when the read arrived)
    /// was applied, even when a command that arrived before it on the same connection was not yet.
    package var readsIgnoreEarlierCommands = false

    package init(clockFloorsOwnStamps: Bool = false, readsIgnoreEarlierCommands: Bool = false) {
        self.clockFloorsOwnStamps = clockFloorsOwnStamps
        self.readsIgnoreEarlierCommands = readsIgnoreEarlierCommands
    }
}
