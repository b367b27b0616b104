import BatonProtocol
import BatonRaft
import BatonTestSupport
import NIOCore
import Testing

@testable import BatonCore

/// The ordered index behind lock and job listings (issue 38): it lists what a sorted set would, and
/// a page costs what the page holds, not what the table holds.
@Suite struct OrderedKeysTests {
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func listsWhatASortedSetWould(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var keys = OrderedKeys<Int>()
        var table = Set<Int>()
        for _ in 0..<20_000 {
            let key = random.roll(5_000)
            if table.contains(key) {
                table.remove(key)
                if keys.remove() { keys.compact { table.contains($0) } }
            } else {
                table.insert(key)
                keys.insert(key)
            }
            if random.roll(500) == 0 {
                let start = random.roll(5_000)
                let inclusive = random.roll(2) == 0
                var seen: [Int] = []
                keys.forEach(from: start, inclusive: inclusive, exists: { table.contains($0) }) { key in
                    seen.append(key)
                    return seen.count < 50
                }
                let expected = table.filter { inclusive ? $0 >= start : $0 > start }.sorted().prefix(50)
                #expect(seen == Array(expected), "seed \(seed), from \(start)")
            }
        }
        var all: [Int] = []
        keys.forEach(from: nil, inclusive: true, exists: { table.contains($0) }) { all.append($0); return true }
        #expect(all == table.sorted(), "seed \(seed)")
    }

    @Test func keysInOrderGoStraightOntoTheRun() {
        var keys = OrderedKeys<Int>()
        for k in 1...1000 { keys.insert(k) }
        var all: [Int] = []
        keys.forEach(from: 500, inclusive: false, exists: { _ in true }) { all.append($0); return all.count < 3 }
        #expect(all == [501, 502, 503])
    }

    /// A page from the middle of 200,000 keys looks at about as many keys as it returns.
    @Test func aPageLooksAtWhatItReturnsNotAtTheTable() {
        var random = SplitMix64(seed: 42)
        var keys = OrderedKeys<String>()
        var table = Set<String>()
        for i in 0..<200_000 {
            let key = "key-\(random.roll(1_000_000_000))"
            if table.insert(key).inserted { keys.insert(key) }
            if i % 3 == 0, let gone = table.first {
                table.remove(gone)
                if keys.remove() { keys.compact { table.contains($0) } }
            }
        }
        var looked = 0
        var page: [String] = []
        keys.forEach(from: "key-5", inclusive: true, exists: { looked += 1; return table.contains($0) }) { key in
            page.append(key)
            return page.count < 100
        }
        #expect(page.count == 100)
        #expect(looked < 400, "looked at \(looked) keys for a page of 100")
    }

    /// A restored machine lists its locks in key order from where a page starts; a snapshot that holds
    /// a lock twice is refused as malformed, not restored with one of the two.
    @Test func aRestoredMachineListsInOrderAndRefusesAKeyTwice() throws {
        var h = Harness()
        for key in ["b", "a", "c"] { _ = h.acquire(key, ttl: 60_000) }
        let restored = try StateMachine(restoring: h.machine.snapshot())
        #expect(restored.listLocks(prefix: "", after: "a", limit: 10, at: h.time).map(\.key) == ["b", "c"])

        var one = Harness()
        _ = one.acquire("k", ttl: 60_000, owner: "o")
        var bytes = one.machine.snapshot()
        let lockStart = 4 + 2 + 8 + 8 + 8 + 4  // magic, version, now, last token, last job id, lock count
        let lockLength = 3 + 1 + 3 + 32 + 4  // key "k", has holder, owner "o", holder's numbers, no waiters
        let record = try #require(bytes.getBytes(at: bytes.readerIndex + lockStart, length: lockLength))
        var twice = ByteBuffer()
        let head = try #require(bytes.getBytes(at: bytes.readerIndex, length: lockStart - 4))
        twice.writeBytes(head)
        twice.writeInteger(UInt32(2))
        bytes.moveReaderIndex(forwardBy: lockStart + lockLength)
        twice.writeBytes(record)
        twice.writeBytes(record)
        twice.writeBuffer(&bytes)
        let error = try #require(throws: SnapshotError.self) { try StateMachine(restoring: twice) }
        #expect(error.code == .malformed && error.description.contains("lock k twice"), "\(error)")
    }
}
