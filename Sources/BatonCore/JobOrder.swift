import BatonProtocol

/// The ids of the jobs in ascending order, so that JOB_LIST reads a page from its cursor (a binary
/// search, then the page) instead of scanning every job for each page (issue 38: paging through
/// 2,000,000 objects took minutes, each page costing more as the table grew), and a snapshot writes
/// the jobs in id order without sorting them.
///
/// Job ids only ever grow (`lastJobID`), and a snapshot holds its jobs in id order, so an id is
/// only ever appended. A removal is only counted: a removed id stays until removals reach half of
/// what is kept, and then the ids the table no longer holds are cleared out (`compact`); readers
/// skip them meanwhile.
struct JobOrder: Sendable {
    private var ids: [JobID] = []
    private var removed = 0

    /// The id of the newest job; nil when there is none.
    var last: JobID? { ids.last }

    /// Notes a job added: `id` is above every id so far.
    mutating func append(_ id: JobID) {
        precondition(ids.last.map { $0 < id } ?? true, "job \(id) is not above job \(ids.last!)")
        ids.append(id)
    }

    /// Notes a job removed. True when removed ids are now half of what is kept: then the caller
    /// clears them out with `compact(keeping:)`.
    mutating func remove() -> Bool {
        removed += 1
        return removed > 1024 && 2 * removed > ids.count
    }

    /// Keeps only the ids the table still holds (`exists`).
    mutating func compact(keeping exists: (JobID) -> Bool) {
        ids.removeAll { !exists($0) }
        removed = 0
    }

    /// Makes room for `count` ids (a restore).
    mutating func reserveCapacity(_ count: Int) { ids.reserveCapacity(count) }

    /// Calls `body` with each id above `after` (every id when nil), ascending, until it returns
    /// false; ids of removed jobs among them too, which `body` skips.
    func forEach(after: JobID?, _ body: (JobID) -> Bool) {
        var low = 0
        if let after {
            var high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] <= after { low = mid + 1 } else { high = mid }
            }
        }
        for i in low..<ids.count where !body(ids[i]) { return }
    }
}
