/// The keys of a table in their order, so that a listing reads a page from where the last one ended
/// (a binary search, then the page) instead of scanning every record for each page (issue 38: paging
/// through 2,000,000 objects took minutes, each page costing more as the table grew).
///
/// Used for job ids (locks are not indexed: a lock key taken and given back is inserted again
/// each time, which costs the lock cycle; see BENCHMARKS.md, "Listing page by page").
///
/// Written here because no well-kept library has an ordered set: not the standard library, and
/// swift-collections' `SortedSet` is an unreleased prototype behind a trait that says it is not for
/// production. This is the logarithmic method (Bentley and Saxe) over sorted arrays, which keeps
/// the request path cheap without a tree:
/// - a key above every key so far (job ids) goes onto the end of `run`, the big sorted array;
/// - any other key goes into `recent` (at most `recentLimit`, kept sorted); a full `recent` is
///   carried into `levels` as in a binary counter: level i is empty or a sorted array of about
///   `recentLimit`·2^i keys, so a key is moved O(log n) times in all;
/// - a removal is only counted: a removed key stays where it is until removals reach half of what
///   is kept, and then everything is merged into `run` without them (`compact`).
/// So a reader merges the sorted arrays from a binary search in each, and skips keys the table no
/// longer holds (`exists`) and a key met twice (removed and inserted again).
struct OrderedKeys<Key: Comparable & Sendable>: Sendable {
    private var run: [Key] = []
    private var levels: [[Key]] = []
    private var recent: [Key] = []
    private var largest: Key?
    private var kept = 0
    private var removed = 0
    private static var recentLimit: Int { 64 }

    /// Notes that `key` joined the table.
    mutating func insert(_ key: Key) {
        if largest == nil || largest! < key {
            kept += 1
            largest = key
            run.append(key)
            return
        }
        // Kept sorted as it fills (at most `recentLimit` keys moved): no sort on the request path,
        // and a key taken and given back again and again (a lock) is kept there once.
        let at = Self.firstIndex(in: recent, from: key, inclusive: true)
        if at < recent.count && recent[at] == key { return }
        kept += 1
        recent.insert(key, at: at)
        if recent.count >= Self.recentLimit { carry() }
    }

    /// Notes that a key left the table. True when removed keys are now half of what is kept: then
    /// the caller clears them out with `compact(keeping:)`.
    mutating func remove() -> Bool {
        removed += 1
        return removed > 1024 && 2 * removed > kept
    }

    /// Merges everything into one sorted run of the keys the table still holds (`exists`).
    mutating func compact(keeping exists: (Key) -> Bool) {
        var all: [Key] = []
        all.reserveCapacity(Swift.max(0, kept - removed))
        forEach(from: nil, inclusive: true, exists: exists) { all.append($0); return true }
        run = all
        levels = []
        recent = []
        largest = run.last
        kept = run.count
        removed = 0
    }

    /// Makes room for `count` keys (a restore).
    mutating func reserveCapacity(_ count: Int) { run.reserveCapacity(count) }

    /// Calls `body` with each key the table holds (`exists`) from `start` on (itself too when
    /// `inclusive`; every key when nil), in order, until `body` returns false.
    func forEach(from start: Key?, inclusive: Bool, exists: (Key) -> Bool, _ body: (Key) -> Bool) {
        var sources = [run, recent]
        for level in levels where !level.isEmpty { sources.append(level) }
        var at = sources.map { source in start.map { Self.firstIndex(in: source, from: $0, inclusive: inclusive) } ?? 0 }
        var last: Key?
        while true {
            var best = -1
            for s in sources.indices where at[s] < sources[s].count {
                if best < 0 || sources[s][at[s]] < sources[best][at[best]] { best = s }
            }
            guard best >= 0 else { return }
            let key = sources[best][at[best]]
            at[best] += 1
            if key == last || !exists(key) { continue }
            last = key
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

    private static func merge(_ a: [Key], _ b: [Key]) -> [Key] {
        var merged: [Key] = []
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
    private static func firstIndex(in sorted: [Key], from start: Key, inclusive: Bool) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < start || (!inclusive && sorted[mid] == start) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
