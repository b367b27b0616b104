import BatonProtocol
import BatonRaft
import BatonTestSupport
import NIOCore
import Testing

@testable import BatonCore

/// The id order behind job listings and snapshots (issue 38): it lists what a sorted set would, and
/// a page costs what the page holds, not what the table holds.
@Suite struct JobOrderTests {
    /// Ids as the state machine gives them (ascending), jobs removed at random, pages from random
    /// cursors: what a sorted set of the jobs held would list.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func listsWhatASortedSetWould(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var order = JobOrder()
        var table = Set<UInt64>()
        var next: UInt64 = 0
        for _ in 0..<20_000 {
            if !table.isEmpty && random.roll(3) == 0 {
                let gone = table.randomElement(using: &random)!
                table.remove(gone)
                if order.remove() { order.compact { table.contains($0.rawValue) } }
            } else {
                next += 1
                table.insert(next)
                order.append(JobID(next))
            }
            if random.roll(500) == 0 {
                let after = UInt64(random.roll(Int(next) + 1))
                var seen: [UInt64] = []
                order.forEach(after: JobID(after)) { id in
                    if table.contains(id.rawValue) { seen.append(id.rawValue) }
                    return seen.count < 50
                }
                let expected = table.filter { $0 > after }.sorted().prefix(50)
                #expect(seen == Array(expected), "seed \(seed), after \(after)")
            }
        }
        var all: [UInt64] = []
        order.forEach(after: nil) { id in
            if table.contains(id.rawValue) { all.append(id.rawValue) }
            return true
        }
        #expect(all == table.sorted(), "seed \(seed)")
    }

    @Test func aPageStartsAfterItsCursor() {
        var order = JobOrder()
        for k in 1...1000 { order.append(JobID(UInt64(k))) }
        var page: [UInt64] = []
        order.forEach(after: JobID(500)) { page.append($0.rawValue); return page.count < 3 }
        #expect(page == [501, 502, 503])
    }

    /// A page from the middle of 200,000 jobs, a third of them removed, looks at about as many ids as
    /// it returns.
    @Test func aPageLooksAtWhatItReturnsNotAtTheTable() {
        var random = SplitMix64(seed: 42)
        var order = JobOrder()
        var table = Set<UInt64>()
        for id in UInt64(1)...200_000 {
            table.insert(id)
            order.append(JobID(id))
            if random.roll(3) == 0, let gone = table.randomElement(using: &random) {
                table.remove(gone)
                if order.remove() { order.compact { table.contains($0.rawValue) } }
            }
        }
        var looked = 0
        var page: [UInt64] = []
        order.forEach(after: JobID(100_000)) { id in
            looked += 1
            if table.contains(id.rawValue) { page.append(id.rawValue) }
            return page.count < 100
        }
        #expect(page.count == 100)
        #expect(looked < 400, "looked at \(looked) ids for a page of 100")
    }

    /// A snapshot whose jobs are not in ascending id order (here: one job twice) is refused as
    /// malformed: every build writes them in order.
    @Test func aSnapshotWithAJobTwiceIsRefused() throws {
        var h = Harness()
        _ = h.add(JobSpec(type: "tt"))
        _ = h.add(JobSpec(type: "tt"))
        var bytes = Array(try #require(h.machine.snapshot().getBytes(at: 0, length: h.machine.snapshot().readableBytes)))
        let second: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 2, 0, 2] + Array("tt".utf8)
        let at = try #require((0...(bytes.count - second.count)).first { Array(bytes[$0..<($0 + second.count)]) == second })
        bytes[at + 7] = 1
        let error = try #require(throws: SnapshotError.self) { try StateMachine(restoring: ByteBuffer(bytes: bytes)) }
        #expect(error.code == .malformed && error.description.contains("job 1 after job 1"), "\(error)")
    }
}
