import BatonProtocol

/// A key of a `ShardedTable`: which of its parts holds it.
protocol ShardedKey: Hashable, Sendable {
    /// Any number; the table takes it modulo its part count. Cheap, and the same for equal keys.
    var shard: Int { get }
}

/// A dictionary in 64 parts, for the state machine's big tables (jobs, locks).
///
/// A snapshot encodes a copy of the state on another thread while the event loop goes on writing.
/// With one dictionary per table, the first write after the copy copied the whole table (every
/// record, with a retain of each of its strings and arrays) on the event loop: 0.35 s and a
/// 336 MiB allocation at 900,000 jobs, every snapshot (issue 38; BENCHMARKS.md, "A snapshot no
/// longer stops the node"). In parts, a write copies only the part it touches, about 1/64 of the
/// table, and the copies a snapshot causes are spread over the turns that touch each part.
///
/// Not ordered: iteration goes part by part, each in its dictionary's order (as a dictionary's own,
/// no order to rely on).
struct ShardedTable<Key: ShardedKey, Value: Sendable>: Sendable, Sequence {
    fileprivate var parts: [[Key: Value]] = Array(repeating: [:], count: Self.partCount)
    private static var partCount: Int { 64 }

    @inline(__always) fileprivate static func part(_ key: Key) -> Int { key.shard & (partCount - 1) }

    /// A getter and a setter, no `_modify`: a debug build runs this unspecialised, and there nested
    /// `_modify` coroutines allocate their frames (the debug lock and job cycles allocated 88 and
    /// 112 times more, over the bounds `AllocationTests` holds).
    subscript(key: Key) -> Value? {
        get { parts[Self.part(key)][key] }
        set { parts[Self.part(key)][key] = newValue }
    }

    /// The number of records: the parts' counts added up.
    var count: Int {
        var total = 0
        var i = 0
        while i < parts.count {  // not a for-in: its iterator allocates in a debug build
            total += parts[i].count
            i += 1
        }
        return total
    }

    var isEmpty: Bool { count == 0 }

    /// Every record's value, part by part.
    var values: FlattenSequence<LazyMapSequence<[[Key: Value]], Dictionary<Key, Value>.Values>> {
        parts.lazy.map(\.values).joined()
    }

    @discardableResult
    mutating func updateValue(_ value: Value, forKey key: Key) -> Value? {
        parts[Self.part(key)].updateValue(value, forKey: key)
    }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        parts[Self.part(key)].removeValue(forKey: key)
    }

    /// Makes room for `count` records in all, spread evenly over the parts (a restore).
    mutating func reserveCapacity(_ count: Int) {
        let each = count / Self.partCount + 1
        for i in parts.indices { parts[i].reserveCapacity(each) }
    }

    func makeIterator() -> FlattenSequence<[[Key: Value]]>.Iterator { parts.joined().makeIterator() }
}

extension JobID: ShardedKey {
    /// Consecutive ids go to consecutive parts.
    var shard: Int { Int(truncatingIfNeeded: rawValue) }
}

extension String: ShardedKey {
    /// FNV-1a of the last 8 bytes (where keys such as `orders/1234` differ), not the whole key.
    var shard: Int {
        var hash = FNV1a()
        var i = utf8.index(utf8.endIndex, offsetBy: -8, limitedBy: utf8.startIndex) ?? utf8.startIndex
        while i < utf8.endIndex {  // not a for-in: its iterator allocates in a debug build
            hash.add(utf8[i])
            i = utf8.index(after: i)
        }
        return Int(truncatingIfNeeded: hash.value)
    }
}
