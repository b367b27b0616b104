import BatonRaft
import Foundation
import Testing

@testable import BatonNode

/// Seeded simulations of whole clusters running the production `Node` (see `NodeSimulation`). A
/// failing seed is printed with its failure; `BATON_SEED=<seed> swift test --filter NodeSimulationTests`
/// replays it alone.
@Suite struct NodeSimulationTests {
    static let replaySeed: UInt64? = ProcessInfo.processInfo.environment["BATON_SEED"].flatMap { UInt64($0) }

    struct Totals {
        var elections = 0
        var commands = 0
        var grants = 0
        var pauses = 0
        var crashes = 0
    }

    /// Runs the seeds one after another, yielding between them: a long synchronous loop would hold a
    /// thread of the test run's small cooperative pool, and starve the tests that run beside it.
    func runSeeds(_ seeds: some Sequence<UInt64>, options: NodeSimulation.Options) async -> Totals {
        var totals = Totals()
        for seed in seeds {
            var simulation = NodeSimulation(seed: seed, options: options)
            simulation.run()
            if let failure = simulation.failures.first {
                Issue.record("\(failure) (replay: BATON_SEED=\(seed))")
                return totals
            }
            totals.elections += simulation.elections
            totals.commands += simulation.acknowledgedCommands
            totals.grants += simulation.grants
            totals.pauses += simulation.pauses
            totals.crashes += simulation.crashes
            await Task.yield()
        }
        return totals
    }

    @Test func oneNode() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(20_001...20_200)
        var options = NodeSimulation.Options()
        options.nodes = 1
        let totals = await runSeeds(seeds, options: options)
        #expect(totals.elections >= seeds.count)
        #expect(totals.commands >= seeds.count * 50)
        #expect(totals.grants >= seeds.count * 5)
    }

    @Test func threeNodes() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(1...600)
        let totals = await runSeeds(seeds, options: NodeSimulation.Options())
        // The runs did something: leaders were elected, hosts paused and crashed, clients were answered.
        #expect(totals.elections >= seeds.count)
        #expect(totals.commands >= seeds.count * 50)
        #expect(totals.grants >= seeds.count * 5)
        #expect(totals.pauses >= seeds.count)
        #expect(totals.crashes >= seeds.count)
    }

    @Test func fiveNodes() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(10_001...10_250)
        var options = NodeSimulation.Options()
        options.nodes = 5
        let totals = await runSeeds(seeds, options: options)
        #expect(totals.elections >= seeds.count)
        #expect(totals.commands >= seeds.count * 50)
    }

    @Test func aSeedReplaysExactly() {
        for seed: UInt64 in [7, 4242] {
            var a = NodeSimulation(seed: seed)
            var b = NodeSimulation(seed: seed)
            a.run()
            b.run()
            #expect(a.traceHash == b.traceHash)
            #expect(a.acknowledgedCommands == b.acknowledgedCommands)
        }
        var c = NodeSimulation(seed: 8)
        c.run()
        var d = NodeSimulation(seed: 7)
        d.run()
        #expect(c.traceHash != d.traceHash)
    }
}
