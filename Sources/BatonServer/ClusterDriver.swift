import BatonCore
import BatonProtocol
import BatonRaft
import BatonStorage
import Logging
import NIOCore

/// Drives the Raft core of a cluster member: ticks it, feeds it peers' messages and the runtime's
/// proposals, and carries out its `RaftReady`: applies its committed entries at once (they are on
/// this disk already), then persists (snapshot, entries, hard state, synced by the log writer), then
/// sends. Lives on the node's event loop.
///
/// **Time.** The leader stamps every entry with the cluster's time (`ClusterClock`, which holds the
/// rules), and puts it in its heartbeats, so a new leader continues from the newest stamp in its log
/// or the newest time its old leader's heartbeats told, whichever is later (and may be trusted).
/// A change of role is taken in hand as soon as Raft makes it, so no entry is stamped by a member
/// that leads in Raft's eyes but has not yet taken office on the clock.
final class ClusterDriver {
    private(set) var raft: Raft
    let membership: Membership
    private let eventLoop: any EventLoop
    private let log: DurableLog
    let transport: PeerTransport
    private let logger: Logger
    private var readyScheduled = false
    private var ticker: RepeatedTask?
    private var wasLeader = false
    private var clock: ClusterClock
    /// This node's own clock: the first leader of a new cluster starts the cluster's time from it.
    private let nodeClock: NodeClock
    private var stopped = false
    /// The newest term known to be on disk: a leader's appends may go out before its own sync only
    /// when its term (and so its vote for itself) is durable.
    private var durableTerm: Term

    /// Applies one committed entry (in log order).
    var apply: (LogEntry) -> Void = { _ in }
    /// Replaces the state machine with a snapshot received from the leader.
    var restore: (Snapshot) -> Void = { _ in }
    /// Read indexes confirmed (id, index) and reads that failed (not the leader any more).
    var reads: (_ ready: [(id: ReadID, index: LogIndex)], _ failed: [ReadID]) -> Void = { _, _ in }
    /// Leadership was gained or lost.
    var roleChanged: (_ isLeader: Bool) -> Void = { _ in }
    /// The log writer failed: nothing more can be made durable.
    var failed: (any Error) -> Void = { _ in }

    /// `stateTime` is the recovered state machine's time (its snapshot's): the cluster's time
    /// resumes from it, or from a later stamp in the log.
    init(
        configuration: NodeConfiguration, recovered: (hardState: HardState, snapshot: Snapshot, entries: [LogEntry]),
        stateTime: Timestamp, nodeClock: NodeClock, log: DurableLog, eventLoop: any EventLoop, logger: Logger
    ) {
        let membership = configuration.membership!  // a validated cluster member
        var raftConfiguration = RaftConfiguration(members: membership.nodes)
        raftConfiguration.electionTicks = 15
        raftConfiguration.heartbeatTicks = 2
        self.raft = Raft(
            id: membership.me, configuration: raftConfiguration, hardState: recovered.hardState, snapshot: recovered.snapshot,
            entries: recovered.entries, seed: UInt64.random(in: 0...UInt64.max))
        self.durableTerm = recovered.hardState.term
        self.membership = membership
        self.eventLoop = eventLoop
        self.log = log
        self.logger = logger
        let peers = membership.peers.mapValues { (host: $0.host, port: $0.raftPort) }
        self.transport = PeerTransport(eventLoop: eventLoop, peers: peers, maxFrameSize: 1 << 28, logger: logger)
        self.clock = ClusterClock(stateTime: stateTime, at: Self.monotonic())
        self.nodeClock = nodeClock
    }

    /// The monotonic clock, in milliseconds.
    private static func monotonic() -> UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    var me: NodeConfiguration.ClusterMember { membership.mine }

    /// The leader's client address, if this member knows who leads.
    var leaderAddress: String? {
        membership[raft.leader]?.clientAddress
    }

    func start(tick: TimeAmount) {
        transport.receive = { [unowned self] envelope in
            self.raft.step(envelope)
            self.roleMayHaveChanged()
            self.scheduleReady()
        }
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        ticker = eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            let driver = this.value
            driver.stampHeartbeats()
            driver.raft.tick()
            driver.roleMayHaveChanged()
            driver.processReady()
        }
    }

    func stop() {
        stopped = true
        ticker?.cancel()
        transport.close()
    }

    // MARK: Proposals and reads

    /// The cluster's time: on the leader, what it stamps next; on a follower, an estimate.
    func now() -> Timestamp {
        clock.now(at: Self.monotonic())
    }

    /// A leader's heartbeats carry its time (a reading a moment old: never ahead of its clock).
    private func stampHeartbeats() {
        if raft.isLeader { raft.heartbeatContext = now().milliseconds }
    }

    /// Stamps `input` with the cluster's time and appends it; nil when this member does not lead.
    /// Returns the stamped input too, so the leader need not decode its own entry when it applies it.
    func propose(_ input: StateMachineInput) -> (index: LogIndex, term: Term, timed: TimedInput)? {
        guard raft.isLeader, clock.isLeading else { return nil }
        let timed = TimedInput(input, at: clock.stamp(at: Self.monotonic()))
        guard let index = raft.propose(timed.encode()) else { return nil }
        scheduleReady()
        return (index, raft.term, timed)
    }

    func readIndex(_ id: ReadID) {
        stampHeartbeats()
        raft.readIndex(id)
        scheduleReady()
    }

    /// Notes the time of an applied entry, so a later leader never stamps earlier.
    func applied(at time: Timestamp) {
        clock.applied(time, at: Self.monotonic())
    }

    /// Hands a snapshot of the applied state to Raft, which then forgets the entries it covers.
    func compact(to snapshot: Snapshot) {
        raft.compact(to: snapshot)
    }

    // MARK: Ready

    func scheduleReady() {
        guard !readyScheduled else { return }
        readyScheduled = true
        eventLoop.execute { [this = NIOLoopBound(self, eventLoop: eventLoop)] in this.value.processReady() }
    }

    private func processReady() {
        readyScheduled = false
        guard !stopped else { return }
        roleMayHaveChanged()
        var next = raft.ready()
        guard !next.isEmpty else { return }
        if durableTerm == raft.term && !next.messagesBeforeSync.isEmpty {
            // The followers sync while the leader syncs (thesis §10.2.1).
            for message in next.messagesBeforeSync { transport.send(message) }
            transport.flush()
        } else {
            next.messages = next.messagesBeforeSync + next.messages
        }
        // Durable here already (see `RaftReady.committed`): a leader answers its clients without
        // waiting for the sync of the entries proposed since.
        for entry in next.committed { apply(entry) }
        if !next.readsReady.isEmpty || !next.readsFailed.isEmpty { reads(next.readsReady, next.readsFailed) }
        // Messages wait for the persists before them, even with nothing of their own to persist.
        guard next.hardState != nil || next.snapshot != nil || !next.entries.isEmpty || !next.messages.isEmpty else { return }
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let ready = next
        log.persist(
            snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState, sync: ready.mustSync, on: eventLoop)
            .whenComplete { result in
                let driver = this.value
                guard !driver.stopped else { return }
                if case .failure(let error) = result {
                    driver.failed(error)
                    return
                }
                if let hardState = ready.hardState { driver.durableTerm = hardState.term }
                if let last = ready.entries.last {
                    driver.raft.persisted(through: last.index, term: last.term)
                    driver.scheduleReady()  // the leader may now count its own copy towards a commit
                }
                for message in ready.messages { driver.transport.send(message) }
                driver.transport.flush()
                if let snapshot = ready.snapshot { driver.restore(snapshot) }
            }
    }

    /// Follows Raft's role into the clock and the runtime, and notes the time the leader's newest
    /// heartbeat told. Called after everything that may change them (a message, a tick).
    private func roleMayHaveChanged() {
        if raft.leaderContext != 0 {
            clock.heard(Timestamp(milliseconds: raft.leaderContext), term: raft.leaderContextTerm, at: Self.monotonic())
        }
        if raft.isLeader != wasLeader { leadershipChanged() }
    }

    private func leadershipChanged() {
        wasLeader = raft.isLeader
        if wasLeader {
            // Continue the cluster's clock from the newest time on the committed history's timeline;
            // the leaderless gap is not counted.
            let (newest, lastTerm) = logTail()
            clock.lead(term: raft.term, logNewest: newest, logLastTerm: lastTerm, origin: nodeClock.now(), at: Self.monotonic())
            stampHeartbeats()
            logger.info("leading", metadata: ["raft.term": "\(raft.term)", "raft.index": "\(raft.lastIndex)", "time": "\(now())"])
        } else {
            clock.follow(at: Self.monotonic())
            logger.info("following", metadata: ["raft.term": "\(raft.term)", "leader": "\(leaderAddress ?? "unknown")"])
        }
        roleChanged(wasLeader)
    }

    /// The newest stamp in the log (zero: none after the snapshot), and the term of the last entry
    /// before this term's.
    private func logTail() -> (newest: Timestamp, lastTerm: Term) {
        var index = raft.lastIndex
        var lastTerm: Term?
        var newest: Timestamp?
        while index >= raft.snapshotIndex, lastTerm == nil || newest == nil {
            guard let term = raft.term(at: index) else { break }
            if lastTerm == nil, term < raft.term { lastTerm = term }
            if newest == nil, index > raft.snapshotIndex, let entry = raft.entry(at: index), !entry.data.isEmpty,
                let timed = try? TimedInput.decode(entry.data)
            {
                newest = timed.time
            }
            if index == raft.snapshotIndex { break }
            index = index.advanced(by: -1)
        }
        return (newest ?? .zero, lastTerm ?? Term(0))
    }
}
