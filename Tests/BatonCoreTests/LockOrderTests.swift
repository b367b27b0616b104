import BatonProtocol
import BatonRaft
import BatonTestSupport
import NIOCore
import Testing

@testable import BatonCore

/// The key order behind lock listings and snapshots (issue 38): it lists what a sorted set would, a
/// page costs what the page holds, not what the table holds, and a key taken and given back again
/// and again is kept once.
@Suite struct LockOrderTests {
    /// Keys joining and leaving the table at random (as the state machine reports them: a key joins
    /// only when it is not held), pages from random cursors: what a sorted set of the keys held would
    /// list.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func listsWhatASortedSetWould(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var order = LockOrder()
        var table = Set<String>()
        for _ in 0..<20_000 {
            let key = "k\(random.roll(5_000))"
            if table.contains(key) {
                table.remove(key)
                if order.remove() { order.compact { table.contains($0) } }
            } else {
                table.insert(key)
                order.insert(key)
            }
            if random.roll(500) == 0 {
                let start = "k\(random.roll(5_000))"
                let inclusive = random.roll(2) == 0
                var seen: [String] = []
                order.forEach(from: start, inclusive: inclusive) { key in
                    if table.contains(key) { seen.append(key) }
                    return seen.count < 50
                }
                let expected = table.filter { inclusive ? $0 >= start : $0 > start }.sorted().prefix(50)
                #expect(seen == Array(expected), "seed \(seed), from \(start)")
            }
        }
        var all: [String] = []
        order.forEach(from: nil, inclusive: true) { key in
            if table.contains(key) { all.append(key) }
            return true
        }
        #expect(all == table.sorted(), "seed \(seed)")
    }

    /// The lock cycle: a key taken and given back 10,000 times is kept once, not once a cycle.
    @Test func aKeyTakenAndGivenBackIsKeptOnce() {
        var order = LockOrder()
        for key in ["b", "c"] { order.insert(key) }
        for _ in 0..<10_000 {
            order.insert("a")
            let compact = order.remove()
            #expect(!compact)
        }
        var kept: [String] = []
        order.forEach(from: nil, inclusive: true) { kept.append($0); return true }
        #expect(kept == ["a", "b", "c"])
    }

    /// A page from the middle of 200,000 keys, a third of them removed, looks at about as many keys as
    /// it returns.
    @Test func aPageLooksAtWhatItReturnsNotAtTheTable() {
        var random = SplitMix64(seed: 42)
        var order = LockOrder()
        var table = Set<String>()
        for i in 0..<200_000 {
            let key = "key-\(random.roll(1_000_000_000))"
            if table.insert(key).inserted { order.insert(key) }
            if i % 3 == 0, let gone = table.first {
                table.remove(gone)
                if order.remove() { order.compact { table.contains($0) } }
            }
        }
        var looked = 0
        var page: [String] = []
        order.forEach(from: "key-5", inclusive: true) { key in
            looked += 1
            if table.contains(key) { page.append(key) }
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
