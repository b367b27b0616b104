import BatonRaft
import Synchronization

/// What the saves of one `SnapshotStore` share, under a lock: the newest snapshot in place, and a
/// counter that gives every save a temporary file of its own. Renames happen with the lock held, one
/// at a time, so a snapshot is never renamed over a newer one.
final class SnapshotRenames: Sendable {
    private struct State {
        var newest: LogIndex
        var temporaries: UInt64 = 0

        /// The snapshot in place when it makes one at `index` pointless (the same or a later index).
        func newer(than index: LogIndex) -> LogIndex? {
            newest >= index && newest != LogIndex(0) ? newest : nil
        }
    }

    private let state: Mutex<State>

    init(newest: LogIndex) {
        state = Mutex(State(newest: newest))
    }

    /// The index in place that makes a save at `index` pointless (the same or a later one), if any.
    func supersedes(_ index: LogIndex) -> LogIndex? {
        state.withLock { $0.newer(than: index) }
    }

    /// A number no other save of this store uses.
    func nextTemporary() -> UInt64 {
        state.withLock {
            $0.temporaries += 1
            return $0.temporaries
        }
    }

    /// Runs `rename` with the lock held, passing the newer index in place when there is one (the
    /// save must then drop its file); records `index` as the newest when `rename` succeeds without one.
    func inPlace<T>(_ index: LogIndex, _ rename: (LogIndex?) throws -> T) throws -> T {
        try state.withLock { s in
            let newer = s.newer(than: index)
            let result = try rename(newer)
            if newer == nil { s.newest = index }
            return result
        }
    }
}
