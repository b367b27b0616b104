import BatonCore
import BatonProtocol
import BatonRaft

/// What a node asks its shell to do, in the order given.
///
/// **The handling loop.** The shell steps each event into the node and carries out the actions that
/// come back, in order, before it steps the next event; once per turn of its loop it steps
/// `NodeEvent.endOfTurn`. Three rules keep the promises of the log:
/// - `persist` is carried out in order, and each is reported back by `NodeEvent.persisted` once it is
///   durable (synced, when `sync` says so).
/// - `send` may be carried out at once. A message that depends on what a persist holds (a vote, an
///   acknowledgement of entries) is held inside the Raft core and comes out as `send` only after
///   that report: nothing goes out before the state it depends on is durable (see `RaftReady`).
/// - `answer` may be sent at once: an answer only ever comes from an applied entry, and entries are
///   applied only once they are durable here (Raft hands out committed entries that were persisted).
/// - `setTimer` replaces the timer set before it.
package enum NodeAction: Sendable {
    /// Send these messages to their members, in order.
    case send([RaftEnvelope])
    /// Make durable, in this order: a snapshot received from the leader (it replaces the log it
    /// covers), entries (an entry at index i replaces the stored one at i and all after it), and the
    /// hard state. Then report `NodeEvent.persisted(id)`.
    case persist(PersistID, snapshot: Snapshot?, entries: [LogEntry], hardState: HardState?, sync: Bool)
    /// Send the answer to whoever waits on the route.
    case answer(RouteID, Reply)
    /// Step `NodeEvent.timer` at this monotonic reading (milliseconds), in place of any timer set before.
    case setTimer(atMonotonic: UInt64)
    /// Save a snapshot of this state, which has applied everything up to `index`, then report
    /// `NodeEvent.snapshotSaved` (or `snapshotFailed`). May be done off the loop: the state is a value.
    case saveSnapshot(StateMachine, index: LogIndex, term: Term)
    /// This node took office as the leader of `term`; its log ends at `lastIndex`, the cluster's time is `time`.
    case leading(term: Term, lastIndex: LogIndex, time: Timestamp)
    /// This node follows `leader` (none known yet) in `term`.
    case following(term: Term, leader: NodeIndex)
    /// The leader's snapshot replaced this node's state.
    case installedSnapshot(LogIndex)
    /// On the leader: schedule slots settled by an applied entry, and the cluster's time then (for
    /// the metrics of fires and their lag).
    case schedulesSettled([ScheduleOutcome], at: Timestamp)
    /// The waits of clients that did not reconnect to a new leader were withdrawn.
    case withdrewAbsentClients(Int)
    /// The node cannot go on (the leader's snapshot does not decode): stop serving.
    case halt(String)
}
