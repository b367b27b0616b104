import BatonCore
import BatonProtocol
import BatonRaft

/// Everything that happens to a node, as `Node.step(_:at:into:)` takes it. The shell feeds these in
/// the order they happen, each with the monotonic clock's reading.
package enum NodeEvent: Sendable {
    /// A client's command, with who sent it if its connection authenticated: it goes through the log,
    /// and its answer goes to the route (none: nobody listens for it).
    case command(RouteID?, ClientID, SequenceNumber, Command, by: Principal? = nil)
    /// A client's read: answered on the leader once a quorum confirms it still leads (read index), if
    /// the principal may read it.
    case read(RouteID, Query, by: Principal? = nil)
    /// A connection of `client` said HELLO.
    case clientConnected(ClientID)
    /// A connection of `client` closed; when it was the last, the client's waits are withdrawn.
    case clientDisconnected(ClientID)
    /// The requester of one waiting command gave up on it (an HTTP/2 stream reset).
    case withdrawn(ClientID, SequenceNumber)
    /// A message from another member.
    case message(RaftEnvelope)
    /// One Raft tick passed, and the host's wall clock read `wall` (for the calendar clock).
    case tick(wall: Timestamp)
    /// The lowest peer protocol version agreed with the other members (0 while one was not heard
    /// from): slots are judged on the calendar clock once every member speaks
    /// `Node.calendarPeerProtocol`, as members of older builds judge them on the cluster's clock.
    case peerProtocol(lowest: UInt16)
    /// The timer the node last set (`NodeAction.setTimer`) fired.
    case timer
    /// Storage made one `NodeAction.persist` durable (they complete in order).
    case persisted(PersistID)
    /// Storage saved the snapshot asked for by `NodeAction.saveSnapshot`.
    case snapshotSaved(Snapshot)
    /// Storage could not save that snapshot; the log keeps growing until the next try.
    case snapshotFailed
    /// The shell finished one turn of its loop: hand out what Raft has ready (entries to persist,
    /// messages, committed entries to apply). Everything that arrived in the turn goes out together:
    /// one write, one sync, one read index.
    case endOfTurn
}
