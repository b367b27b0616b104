import Testing

@testable import BatonRaft

/// Seeded simulations of the whole replicated state machine (see `Simulation`). A failing seed is
/// printed with its failure; `BATON_SEED=<seed> swift test --filter SimulationTests` replays it alone.
@Suite struct SimulationTests {
    static let replaySeed: UInt64? = ProcessInfoSeed.value

    /// Runs the seeds one after another, yielding between them: a long synchronous loop would hold a
    /// thread of the test run's small cooperative pool, and starve the tests that run beside it.
    func runSeeds(_ seeds: some Sequence<UInt64>, nodes: Int) async -> (elections: Int, commands: Int) {
        var elections = 0
        var commands = 0
        for seed in seeds {
            var simulation = Simulation(seed: seed, options: .init(nodes: nodes))
            simulation.run()
            if !simulation.failures.isEmpty {
                Issue.record("\(simulation.failures.first!) (replay: BATON_SEED=\(seed))")
                return (elections, commands)
            }
            elections += simulation.elections
            commands += simulation.acknowledgedCommands
            await Task.yield()
        }
        return (elections, commands)
    }

    @Test func threeNodes() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(1...700)
        let (elections, commands) = await runSeeds(seeds, nodes: 3)
        // The runs did something: leaders were elected and clients were answered.
        #expect(elections >= seeds.count)
        #expect(commands >= seeds.count * 20)
    }

    @Test func fiveNodes() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(10_001...10_300)
        let (elections, commands) = await runSeeds(seeds, nodes: 5)
        #expect(elections >= seeds.count)
        #expect(commands >= seeds.count * 20)
    }

    @Test func aSeedReplaysExactly() {
        for seed: UInt64 in [7, 4242] {
            var a = Simulation(seed: seed)
            var b = Simulation(seed: seed)
            a.run()
            b.run()
            #expect(a.traceHash == b.traceHash)
            #expect(a.acknowledgedCommands == b.acknowledgedCommands)
        }
        var c = Simulation(seed: 8)
        c.run()
        var d = Simulation(seed: 7)
        d.run()
        #expect(c.traceHash != d.traceHash)
    }
}

import Foundation

enum ProcessInfoSeed {
    static var value: UInt64? { ProcessInfo.processInfo.environment["BATON_SEED"].flatMap { UInt64($0) } }
}
