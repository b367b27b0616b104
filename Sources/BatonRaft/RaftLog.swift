/// The log as the Raft core sees it: a snapshot base, then entries. Entries appended since the last
/// `Ready` are "unstable": they reach the disk through the next `Ready`.
struct RaftLog: Sendable {
    /// Everything up to and including `snapshot.index` lives only in the snapshot.
    private(set) var snapshot: Snapshot
    /// Entries `snapshot.index + 1 ... lastIndex`.
    private(set) var entries: [LogEntry]
    /// Entries from this index on are not yet handed out for persisting.
    private(set) var unstableFrom: LogIndex

    init(snapshot: Snapshot, entries: [LogEntry]) {
        self.snapshot = snapshot
        self.entries = entries
        self.unstableFrom = snapshot.index.advanced(by: Int64(entries.count) + 1)
    }

    var firstIndex: LogIndex { snapshot.index.advanced(by: 1) }
    var lastIndex: LogIndex { snapshot.index.advanced(by: Int64(entries.count)) }
    var lastTerm: Term { entries.last?.term ?? snapshot.term }

    /// The term of the entry at `index`; nil when it is compacted away or beyond the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshot.index { return snapshot.term }
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return entries[offset(index)].term
    }

    func matches(_ index: LogIndex, _ term: Term) -> Bool { self.term(at: index) == term }

    /// Whether a log ending at (`index`, `term`) is at least as up to date as this one (Raft §5.4.1).
    func isUpToDate(lastIndex index: LogIndex, lastTerm term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// Entries in `from ... through`, at most `limit`; empty if `from` is compacted.
    /// Entries `from` through `through`, at most `limit` of them, and no more than `maxBytes` of entry
    /// data, except that the first entry is always included.
    func slice(from: LogIndex, through: LogIndex, limit: Int, maxBytes: Int = .max) -> [LogEntry] {
        guard from >= firstIndex, from <= through, through <= lastIndex else { return [] }
        let start = offset(from)
        var end = start + min(offset(through) + 1 - start, limit)
        if maxBytes != .max {
            var bytes = entries[start].data.count
            var cut = start + 1
            while cut < end, bytes + entries[cut].data.count <= maxBytes {
                bytes += entries[cut].data.count
                cut += 1
            }
            end = cut
        }
        return Array(entries[start..<end])
    }

    mutating func append(_ entry: LogEntry) {
        entries.append(entry)
    }

    /// Appends a leader's entries after a matching (prev) point, dropping any conflicting suffix.
    /// Returns the index of the last entry now known to match the leader's log, and where a
    /// conflicting suffix was cut off, if one was.
    mutating func merge(after prev: LogIndex, _ incoming: [LogEntry]) -> (last: LogIndex, conflict: LogIndex?) {
        var conflict: LogIndex?
        for entry in incoming {
            if entry.index <= snapshot.index { continue }  // already part of the snapshot
            if let t = term(at: entry.index) {
                if t == entry.term { continue }
                entries.removeSubrange(offset(entry.index)...)  // a conflict: the rest is the leader's
                unstableFrom = min(unstableFrom, entry.index)
                conflict = conflict ?? entry.index
            }
            entries.append(entry)
        }
        return (incoming.last?.index ?? prev, conflict)
    }

    /// The entries to persist, and marks them stable.
    mutating func takeUnstable() -> [LogEntry] {
        guard unstableFrom <= lastIndex else {
            unstableFrom = lastIndex.advanced(by: 1)
            return []
        }
        let out = Array(entries[offset(max(unstableFrom, firstIndex))...])
        unstableFrom = lastIndex.advanced(by: 1)
        return out
    }

    /// Forgets entries up to `snapshot.index`, which `snapshot` now holds.
    mutating func compact(to snapshot: Snapshot) {
        guard snapshot.index > self.snapshot.index else { return }
        if snapshot.index <= lastIndex {
            entries.removeFirst(offset(snapshot.index) + 1)
        } else {
            entries.removeAll()
        }
        self.snapshot = snapshot
        unstableFrom = max(unstableFrom, firstIndex)
    }

    /// Replaces the whole log with `snapshot` (a follower installing the leader's).
    mutating func restore(_ snapshot: Snapshot) {
        self.snapshot = snapshot
        entries.removeAll()
        unstableFrom = firstIndex
    }

    private func offset(_ index: LogIndex) -> Int { Int(index.rawValue - snapshot.index.rawValue - 1) }
}
