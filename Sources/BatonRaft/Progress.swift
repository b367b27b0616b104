/// What a leader knows about one follower's log, and how it sends to it (etcd-io/raft's Progress).
struct Progress: Sendable {
    enum State: Sendable, Equatable {
        /// Not sure where the follower's log ends: one append at a time, until one succeeds.
        case probe
        /// In step: appends are pipelined, up to `maxInflight` unacknowledged.
        case replicate
        /// A snapshot up to `index` is on its way; appends wait.
        case snapshot(index: LogIndex, sentAtTick: UInt64)
    }

    /// The follower's log matches the leader's up to here.
    var match: LogIndex = .zero
    /// The next entry to send.
    var next: LogIndex
    var state: State = .probe
    /// In probe state: an append is out and unanswered.
    var probeSent = false
    /// In replicate state: the last index of each unacknowledged append, oldest first.
    var inflight: [LogIndex] = []
    /// Heard from since the last check-quorum round.
    var recentActive = false
    /// `match` when the previous heartbeat reply came: no change since, from a follower with nothing
    /// left to sync, means appends or their replies were lost.
    var matchAtLastHeartbeat: LogIndex = .zero
    /// The newest heartbeat round it answered (read index).
    var acknowledgedRound: UInt64 = 0

    init(next: LogIndex) {
        self.next = next
    }

    mutating func becomeProbe() {
        state = .probe
        probeSent = false
        inflight.removeAll()
        next = match.advanced(by: 1)
    }

    mutating func becomeReplicate() {
        state = .replicate
        probeSent = false
        inflight.removeAll()
        next = max(next, match.advanced(by: 1))
    }

    /// A success reply: the follower holds everything up to `index`.
    mutating func acknowledge(_ index: LogIndex) {
        if index > match { match = index }
        if index >= next { next = index.advanced(by: 1) }
        if let i = inflight.firstIndex(where: { $0 > index }) {
            inflight.removeFirst(i)
        } else {
            inflight.removeAll()
        }
        probeSent = false
    }
}
