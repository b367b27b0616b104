import BatonProtocol
import BatonRaft
import BatonTestSupport
import Testing

@testable import BatonCore

/// The state machine's tables in parts (issue 38): they hold what a dictionary would, and a copy (a
/// snapshot's) keeps what it held while the original is written.
@Suite struct ShardedTableTests {
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func holdsWhatADictionaryWould(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = ShardedTable<String, LockRecord>()
        var expected: [String: LockRecord] = [:]
        for _ in 0..<5_000 {
            let key = "k\(random.roll(700))"
            switch random.roll(3) {
            case 0:
                #expect(table.removeValue(forKey: key) == expected.removeValue(forKey: key))
            case 1:
                table[key] = nil
                expected[key] = nil
            default:
                let record = LockRecord(waiters: Array(repeating: waiter, count: Int(random.roll(3))))
                table[key] = record
                expected[key] = record
            }
        }
        #expect(table.count == expected.count)
        #expect(table.isEmpty == expected.isEmpty)
        for (key, record) in expected { #expect(table[key] == record, "\(key)") }
        #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value) }) == expected)
        #expect(table.values.count == expected.count)
    }

    /// A copy taken before writes (a snapshot's) still holds what it held.
    @Test func aCopyKeepsWhatItHeld() {
        var table = ShardedTable<JobID, Int>()
        for id in UInt64(1)...1_000 { table.updateValue(Int(id), forKey: JobID(id)) }
        let copy = table
        for id in UInt64(1)...500 { table.removeValue(forKey: JobID(id)) }
        table[JobID(7_000)] = 7
        #expect(copy.count == 1_000 && table.count == 501)
        #expect(copy[JobID(1)] == 1 && table[JobID(1)] == nil && copy[JobID(7_000)] == nil)
    }

    private var waiter: LockWaitEntry {
        LockWaitEntry(
            owner: "o", clientID: ClientID(1), sequence: SequenceNumber(1), ttl: Milliseconds(1_000),
            deadline: Timestamp(milliseconds: 5), digest: .unknown)
    }
}
