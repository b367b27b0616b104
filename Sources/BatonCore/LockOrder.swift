/// The keys of the lock table in order, so that LOCK_LIST reads a page from its cursor (a binary
/// search in each sorted array, then the page) instead of scanning every lock for each page
/// (issue 38: a page cost a quarter of a second at a million locks), and a snapshot writes the
/// locks in key order without sorting them.
///
/// The lock cycle pays one hash lookup: a key stays here after its lock is released (`held`
/// remembers every key kept), so a key taken and given back again and again (the common case: a
/// lock per resource) is inserted once, not once a cycle. Removed keys are only counted; when they
/// reach half of what is kept, everything is merged into one run without them (`compact`), and
/// readers skip them meanwhile.
///
/// Written here because no well-kept library has an ordered set: not the standard library, and
/// swift-collections' `SortedSet` is an unreleased prototype behind a trait that says it is not for
/// production. This is the logarithmic method (Bentley and Saxe) over sorted arrays, no tree:
/// - a key above every key so far goes onto the end of `run`, the big sorted array (a restore
///   reads a snapshot's keys in order, so all of them go there);
/// - any other key goes into `recent` (at most `recentLimit`, kept sorted by insertion); a full
///   `recent` is carried into `levels` as in a binary counter: level i is empty or a sorted array
///   of about `recentLimit`·2^i keys, so a key is moved O(log n) times in all.
///
/// Not generic, and without a call to the standard library's sort: the debug build runs unspecialised
/// generic code, which allocated per element and broke the lock cycle's allocation bound.
struct LockOrder: Sendable {
    private var run: [String] = []
    private var levels: [[String]] = []
    private var recent: [String] = []
    private var held: Set<String> = []
    private var removed = 0
    private static var recentLimit: Int { 64 }

    /// Notes that `key` joined the lock table.
    mutating func insert(_ key: String) {
        guard held.insert(key).inserted else {
            // Kept since it left the table: it is back, and no longer counts as removed.
            assert(removed > 0, "lock \(key) joined the table twice")
            removed -= 1
            return
        }
        if run.last.map({ $0 < key }) ?? true {
            run.append(key)
            return
        }
        recent.insert(key, at: Self.firstIndex(in: recent, from: key, inclusive: true))
        if recent.count >= Self.recentLimit { carry() }
    }

    /// Notes that a key left the lock table. True when removed keys are now half of what is kept:
    /// then the caller clears them out with `compact(keeping:)`.
    mutating func remove() -> Bool {
        removed += 1
        return removed > 1024 && 2 * removed > held.count
    }

    /// Merges everything into one sorted run of the keys the table still holds (`exists`).
    mutating func compact(keeping exists: (String) -> Bool) {
        var all: [String] = []
        all.reserveCapacity(Swift.max(0, held.count - removed))
        forEach(from: nil, inclusive: true) { key in
            if exists(key) { all.append(key) }
            return true
        }
        run = all
        levels = []
        recent = []
        held = Set(all)
        removed = 0
    }

    /// Makes room for `count` keys (a restore).
    mutating func reserveCapacity(_ count: Int) {
        run.reserveCapacity(count)
        held.reserveCapacity(count)
    }

    /// Calls `body` with each key kept from `start` on (itself too when `inclusive`; every key when
    /// nil), in order, until `body` returns false; keys whose locks are gone among them too, which
    /// `body` skips.
    func forEach(from start: String?, inclusive: Bool, _ body: (String) -> Bool) {
        var sources = [run, recent]
        for level in levels where !level.isEmpty { sources.append(level) }
        var at = sources.map { source in start.map { Self.firstIndex(in: source, from: $0, inclusive: inclusive) } ?? 0 }
        while true {
            var best = -1
            for s in sources.indices where at[s] < sources[s].count {
                if best < 0 || sources[s][at[s]] < sources[best][at[best]] { best = s }
            }
            guard best >= 0 else { return }
            let key = sources[best][at[best]]
            at[best] += 1
            if !body(key) { return }
        }
    }

    /// Carries the full `recent` into the levels, merging as a binary counter carries.
    private mutating func carry() {
        var carried = recent
        recent.removeAll(keepingCapacity: true)
        var i = 0
        while i < levels.count && !levels[i].isEmpty {
            carried = Self.merge(levels[i], carried)
            levels[i] = []
            i += 1
        }
        if i == levels.count { levels.append([]) }
        levels[i] = carried
    }

    private static func merge(_ a: [String], _ b: [String]) -> [String] {
        var merged: [String] = []
        merged.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            if a[i] <= b[j] {
                merged.append(a[i])
                i += 1
            } else {
                merged.append(b[j])
                j += 1
            }
        }
        merged.append(contentsOf: a[i...])
        merged.append(contentsOf: b[j...])
        return merged
    }

    /// The index of the first key of `sorted` after `start` (or at it, when `inclusive`).
    private static func firstIndex(in sorted: [String], from start: String, inclusive: Bool) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < start || (!inclusive && sorted[mid] == start) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
