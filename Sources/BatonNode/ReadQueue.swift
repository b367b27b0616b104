import BatonCore
import BatonProtocol
import BatonRaft

/// The leader's linearizable reads: waiting for a read index, then for the applied index to reach it
/// and every command proposed before the read arrived (issue 35: a query pipelined after a command on
/// one connection must see it, and the read index alone, the commit index, may stand before it).
/// Reads get growing ids; one read index covers every read with an id up to the one it was asked for.
struct ReadQueue: Sendable {
    struct Read: Sendable {
        var id: ReadID
        var query: Query
        var route: RouteID
        var principal: Principal?
        /// The log's last index when the read arrived: the read is answered once that is applied.
        var after: LogIndex
    }

    private var waiting: [Read] = []
    /// Confirmed read indexes: reads with ids up to `id` may be answered once `index` is applied.
    private var confirmed: [(index: LogIndex, id: ReadID)] = []
    /// Reads with ids up to this one had their read index applied.
    private var settled = ReadID.zero
    private(set) var newest = ReadID.zero
    /// A read arrived since the last read index was asked for.
    private(set) var needsIndex = false

    /// A read that arrived when the log ended at `after`.
    mutating func add(_ query: Query, route: RouteID, by principal: Principal? = nil, after: LogIndex) {
        newest = newest.next
        waiting.append(Read(id: newest, query: query, route: route, principal: principal, after: after))
        needsIndex = true
    }

    /// A read index is being asked for every read so far.
    mutating func indexRequested() { needsIndex = false }

    mutating func confirm(_ id: ReadID, at index: LogIndex) { confirmed.append((index, id)) }

    /// Removes and returns the reads that may be answered once `applied` is applied, in the order
    /// they arrived (`after` never falls from one read to the next, so they leave as a prefix).
    mutating func answerable(applied: LogIndex) -> [Read] {
        while let first = confirmed.first, first.index <= applied {
            confirmed.removeFirst()
            settled = max(settled, first.id)
        }
        let n = waiting.firstIndex { $0.id > settled || $0.after > applied } ?? waiting.count
        guard n > 0 else { return [] }
        defer { waiting.removeFirst(n) }
        return Array(waiting[..<n])
    }

    /// Removes and returns the reads with ids up to `id`.
    mutating func take(upTo id: ReadID) -> [Read] {
        let n = waiting.firstIndex { $0.id > id } ?? waiting.count
        defer { waiting.removeFirst(n) }
        return Array(waiting[..<n])
    }

    /// Removes and returns every read (leadership lost).
    mutating func takeAll() -> [Read] {
        defer {
            waiting.removeAll()
            confirmed.removeAll()
            needsIndex = false
        }
        return waiting
    }
}
