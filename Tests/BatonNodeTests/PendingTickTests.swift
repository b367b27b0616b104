import BatonRaft
import Testing

@testable import BatonNode

/// The question of issue 16, item 4: can a leader stop expiring leases because its tick was lost in
/// a failover? It could: the flag was cleared only when a tick was applied, so a leader deposed
/// before its tick committed, whose tick the next leader's entries replaced, and who was elected
/// again before any other tick was applied, never proposed another. A tick is now pending only in
/// the term it was proposed in.
@Suite struct PendingTickTests {
    @Test func aTickLostWithItsTermIsNotPendingInTheNext() {
        var tick = PendingTick()
        #expect(!tick.isPending(in: Term(3)))
        tick.proposed(in: Term(3))
        #expect(tick.isPending(in: Term(3)))  // one at a time while it leads
        // Deposed, its tick cut from the log, elected again in term 5 with no tick applied since.
        #expect(!tick.isPending(in: Term(5)))
    }

    @Test func anAppliedTickIsNoLongerPending() {
        var tick = PendingTick()
        tick.proposed(in: Term(2))
        tick.applied()
        #expect(!tick.isPending(in: Term(2)))
    }
}
