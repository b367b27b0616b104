/// A message between Raft nodes. The envelope carries sender, receiver and the sender's term.
public enum RaftMessage: Hashable, Sendable {
    /// "Would you vote for me in `term`?" Sent before a real campaign; changes nobody's term (pre-vote),
    /// so a node cut off from the cluster cannot force an election when it comes back.
    case preVote(lastIndex: LogIndex, lastTerm: Term)
    case preVoteReply(granted: Bool)
    case vote(lastIndex: LogIndex, lastTerm: Term)
    case voteReply(granted: Bool)
    /// Entries after (`prevIndex`, `prevTerm`), and the leader's commit index.
    case append(prevIndex: LogIndex, prevTerm: Term, entries: [LogEntry], commit: LogIndex)
    /// Success: the follower's log matches the leader's up to `index`. Failure: the entry at `index`
    /// did not match; `hint` is the follower's last index, to skip back quickly.
    case appendReply(success: Bool, index: LogIndex, hint: LogIndex)
    /// "I am still the leader": `commit` is at most what the receiver is known to hold. `round`
    /// numbers the heartbeats that confirm leadership for read-index reads (0: none asked).
    /// `context` is the leader's `Raft.heartbeatContext`, opaque to Raft.
    case heartbeat(commit: LogIndex, round: UInt64, context: UInt64)
    /// Sent without waiting for the follower's disk. `syncing`: it holds entries not yet synced, so
    /// their append replies are still to come (a slow disk, not lost messages).
    case heartbeatReply(round: UInt64, syncing: Bool)
    /// The leader's snapshot, for a follower that needs entries the leader has compacted away.
    case installSnapshot(Snapshot)
}

/// A message on its way from one node to another.
public struct RaftEnvelope: Hashable, Sendable {
    public var from: NodeIndex
    public var to: NodeIndex
    /// The sender's term (for a pre-vote: the term it would campaign in).
    public var term: Term
    public var message: RaftMessage

    public init(from: NodeIndex, to: NodeIndex, term: Term, message: RaftMessage) {
        self.from = from
        self.to = to
        self.term = term
        self.message = message
    }
}
