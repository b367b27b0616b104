import BatonTestSupport
import Testing

@testable import BatonNode

/// The simulator's invariants catch real faults: old bugs, put back one at a time, each fail a
/// named seed that passes without them (seeds of `NodeSimulationTests`).
/// Found by running seeds from 1 with each fault, scanned again when the simulator's clients began
/// to run `BatonClientCore` (issue 39): of seeds 1…200 the old clock fails 1 (58); of seeds 1…150
/// the old client count fails 30 (the first is 15). A change to the node's timing or the clients'
/// rules moves them; scan again then.
@Suite(.heavy) struct NegativeControlTests {
    func failures(seed: UInt64, _ configure: (inout NodeSimulation.Options) -> Void) async -> [String] {
        var options = NodeSimulation.Options()
        configure(&options)
        return await OffThePool.run { [options] in
            var simulation = NodeSimulation(seed: seed, options: options)
            simulation.run()
            return simulation.failures
        }
    }

    /// The cluster's clock before issue 16 took its own uncommitted stamps as a floor: a leader paused
    /// past its deposition stamps on, is elected again, and counts the cluster's time from stamps that
    /// never committed, so it runs ahead of real time and leases end early.
    @Test func theOldClockFloorFailsSeed58() async {
        let faulty = await failures(seed: 58) { $0.faults.clockFloorsOwnStamps = true }
        #expect(faulty.first?.contains("gained") == true, "\(faulty)")
        #expect(await failures(seed: 58) { _ in }.isEmpty)
    }

    /// The client library before issue 16 counted a lease from when its answer arrived: a slow answer
    /// makes its holder count past the lease's end, while the lock goes to the next in line. The
    /// switch is in the client's own core (`ClientFaults`), which the simulator's clients run.
    @Test func countingFromTheAnswersArrivalFailsSeed15() async {
        let faulty = await failures(seed: 15) { $0.clientFaults.countsFromArrival = true }
        #expect(faulty.first?.contains("while client") == true, "\(faulty)")
        #expect(await failures(seed: 15) { _ in }.isEmpty)
    }

    /// Reads before issue 35 were answered once the read index (the commit index when they arrived)
    /// was applied: a query pipelined behind an acquire on one connection showed the lock free. Every
    /// seed of `aPipelinedSessionReadsItsOwnWrites` (40001…40040) fails so; the first is named here.
    @Test func readsThatIgnoreEarlierCommandsFailSeed40001() async {
        let faulty = await failures(seed: 40_001) {
            $0.pipelinedDepth = 8
            $0.faults.readsIgnoreEarlierCommands = true
        }
        #expect(faulty.first?.contains("showed no holder") == true, "\(faulty)")
        #expect(await failures(seed: 40_001) { $0.pipelinedDepth = 8 }.isEmpty)
    }

    /// Slots judged on the cluster's clock (before issue 36, and still while a member of an older
    /// build is in the cluster): after the whole cluster was down, that clock stands behind real
    /// time by the outage, and every later slot fires late by it, outside its window, never missed.
    @Test func slotsJudgedOnTheClusterClockFailSeed30001() async {
        let faulty = await failures(seed: 30_001) {
            $0 = NodeSimulationTests.scheduleOptions()
            $0.peerProtocol = 6
        }
        #expect(faulty.first?.contains("later than its window") == true, "\(faulty)")
        #expect(await failures(seed: 30_001) { $0 = NodeSimulationTests.scheduleOptions() }.isEmpty)
    }
}
