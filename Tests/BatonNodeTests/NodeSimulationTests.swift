import BatonCore
import BatonProtocol
import BatonRaft
import BatonTestSupport
import Foundation
import Testing

@testable import BatonNode

/// Seeded simulations of whole clusters running the production `Node` (see `NodeSimulation`). A
/// failing seed is printed with its failure; `BATON_SEED=<seed> swift test --filter NodeSimulationTests`
/// replays it alone.
@Suite(.heavy) struct NodeSimulationTests {
    static let replaySeed: UInt64? = ProcessInfo.processInfo.environment["BATON_SEED"].flatMap { UInt64($0) }

    struct Totals {
        var elections = 0
        var commands = 0
        var grants = 0
        var pauses = 0
        var crashes = 0
        var scheduleFires = 0
        var scheduleMisses = 0
        var pipelinedChecked = 0
    }

    /// Runs the seeds one after another, off the cooperative pool (`OffThePool`): minutes of
    /// simulation there would starve the tests that run beside it.
    func runSeeds(_ seeds: [UInt64], options: NodeSimulation.Options) async -> Totals {
        let (totals, failure) = await OffThePool.run { () -> (Totals, String?) in
            var totals = Totals()
            for seed in seeds {
                var simulation = NodeSimulation(seed: seed, options: options)
                simulation.run()
                if let failure = simulation.failures.first { return (totals, "\(failure) (replay: BATON_SEED=\(seed))") }
                totals.elections += simulation.elections
                totals.commands += simulation.acknowledgedCommands
                totals.grants += simulation.grants
                totals.pauses += simulation.pauses
                totals.crashes += simulation.crashes
                totals.scheduleFires += simulation.scheduleFires
                totals.scheduleMisses += simulation.scheduleMisses
                totals.pipelinedChecked += simulation.pipelined.checked
            }
            return (totals, nil)
        }
        if let failure { Issue.record("\(failure)") }
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

    /// The options of the schedule runs: a 50 ms schedule with a 300 ms window, and the whole
    /// cluster down for 500 ms in the middle, with partitions, pauses, crashes and leader changes.
    static func scheduleOptions(wallClockError: Int = 0) -> NodeSimulation.Options {
        var options = NodeSimulation.Options()
        options.schedule = ScheduleSpec(
            name: "scan", every: 50, job: JobSpec(type: "scheduled"), overlap: .allow, catchUp: 300)
        options.outageAt = 1_200
        options.outageLength = 500
        options.wallClockError = wallClockError
        return options
    }

    /// Every slot fired exactly once or counted missed, never twice, never early, never outside its
    /// window, judged by real time (the calendar), after the whole cluster was down for longer than
    /// the window; each host's wall clock off by up to 20 ms and stepped once (issue 36).
    @Test func scheduleSlotsFireOnceThroughFailovers() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(30_001...30_100)
        let totals = await runSeeds(seeds, options: Self.scheduleOptions(wallClockError: 20))
        print("schedule simulation: \(totals.scheduleFires) fires, \(totals.scheduleMisses) misses over \(seeds.count) seeds")
        // The runs fired slots, and some outages outlasted the window.
        #expect(totals.scheduleFires >= seeds.count * 30)
        #expect(totals.scheduleMisses > 0)
    }

    /// A session pipelining 8 pairs at a time (an acquire, then a query of its key, in one write)
    /// through partitions, pauses, crashes and leader changes reads its own writes (issue 35).
    @Test func aPipelinedSessionReadsItsOwnWrites() async {
        let seeds: [UInt64] = Self.replaySeed.map { [$0] } ?? Array(40_001...40_040)
        var options = NodeSimulation.Options()
        options.pipelinedDepth = 8
        let totals = await runSeeds(seeds, options: options)
        print("pipelined simulation: \(totals.pipelinedChecked) pairs checked, \(totals.elections) elections over \(seeds.count) seeds")
        #expect(totals.pipelinedChecked >= seeds.count * 200)
        #expect(totals.elections >= seeds.count)
    }

    @Test func aSeedReplaysExactly() async {
        let hashes = await OffThePool.run {
            [UInt64(7), 7, 4242, 4242, 8].map { seed -> UInt64 in
                var simulation = NodeSimulation(seed: seed)
                simulation.run()
                return simulation.traceHash &+ UInt64(simulation.acknowledgedCommands)
            }
        }
        #expect(hashes[0] == hashes[1] && hashes[2] == hashes[3])
        #expect(hashes[4] != hashes[0])
    }
}
