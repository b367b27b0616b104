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
/// **Time.** The leader stamps every entry with the cluster's time, so every member applies a
/// lease's expiry at the same log position. A new leader continues from the newest stamp in its log
/// and adds only the time it has been leader: the time without a leader is not counted. A lease
/// therefore never ends earlier than its holder was promised (the cluster's clock only runs slower
/// than real time, never faster), and a failover adds at most the leaderless gap to a lease (an
/// election timeout or so), never a fresh full TTL.
final class ClusterDriver {
    private(set) var raft: Raft
    let members: [NodeConfiguration.ClusterMember]
    private let eventLoop: any EventLoop
    private let log: DurableLog
    let transport: PeerTransport
    private let logger: Logger
    private var readyScheduled = false
    private var ticker: RepeatedTask?
    private var wasLeader = false
    private var leaderSince = NIODeadline.now()
    private var leaderBase = Timestamp.zero
    /// The newest time stamped or applied: stamps never go backwards.
    private(set) var lastStamp = Timestamp.zero
    private var stopped = false
    /// The newest term known to be on disk: a leader's appends may go out before its own sync only
    /// when its term (and so its vote for itself) is durable.
    private var durableTerm: Term

    /// Applies one committed entry (in log order).
    var apply: (LogEntry) -> Void = { _ in }
    /// Replaces the state machine with a snapshot received from the leader.
    var restore: (Snapshot) -> Void = { _ in }
    /// Read indexes confirmed (id, index) and reads that failed (not the leader any more).
    var reads: (_ ready: [(id: UInt64, index: LogIndex)], _ failed: [UInt64]) -> Void = { _, _ in }
    /// Leadership was gained or lost.
    var roleChanged: (_ isLeader: Bool) -> Void = { _ in }
    /// The log writer failed: nothing more can be made durable.
    var failed: (any Error) -> Void = { _ in }

    init(
        configuration: NodeConfiguration, recovered: (hardState: HardState, snapshot: Snapshot, entries: [LogEntry]),
        log: DurableLog, eventLoop: any EventLoop, logger: Logger
    ) {
        let members = configuration.cluster ?? []
        let me = NodeIndex(UInt64(configuration.memberIndex ?? 1))
        var raftConfiguration = RaftConfiguration(members: members.indices.map { NodeIndex(UInt64($0 + 1)) })
        raftConfiguration.electionTicks = 15
        raftConfiguration.heartbeatTicks = 2
        self.raft = Raft(
            id: me, configuration: raftConfiguration, hardState: recovered.hardState, snapshot: recovered.snapshot,
            entries: recovered.entries, seed: UInt64.random(in: 0...UInt64.max))
        self.durableTerm = recovered.hardState.term
        self.members = members
        self.eventLoop = eventLoop
        self.log = log
        self.logger = logger
        var peers: [NodeIndex: (host: String, port: Int)] = [:]
        for (i, m) in members.enumerated() where NodeIndex(UInt64(i + 1)) != me {
            peers[NodeIndex(UInt64(i + 1))] = (m.host, m.raftPort)
        }
        self.transport = PeerTransport(eventLoop: eventLoop, peers: peers, maxFrameSize: 1 << 28, logger: logger)
        if let last = recovered.entries.last(where: { !$0.data.isEmpty }), let timed = try? TimedInput.decode(last.data) {
            lastStamp = timed.time
        }
    }

    var me: NodeConfiguration.ClusterMember { members[Int(raft.id.rawValue) - 1] }

    /// The leader's client address, if this member knows who leads.
    var leaderAddress: String? {
        guard raft.leader != .none else { return nil }
        return members[Int(raft.leader.rawValue) - 1].clientAddress
    }

    func start(tick: TimeAmount) {
        transport.receive = { [unowned self] envelope in
            self.raft.step(envelope)
            self.scheduleReady()
        }
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        ticker = eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            this.value.raft.tick()
            this.value.processReady()
        }
    }

    func stop() {
        stopped = true
        ticker?.cancel()
        transport.close()
    }

    // MARK: Proposals and reads

    /// The cluster's time, on the leader.
    func now() -> Timestamp {
        let elapsed = UInt64(max(0, (NIODeadline.now() - leaderSince).nanoseconds / 1_000_000))
        return max(lastStamp, leaderBase.adding(Milliseconds(UInt32(clamping: elapsed))))
    }

    /// Stamps `input` with the cluster's time and appends it; nil when this member does not lead.
    /// Returns the stamped input too, so the leader need not decode its own entry when it applies it.
    func propose(_ input: StateMachineInput) -> (index: LogIndex, term: Term, timed: TimedInput)? {
        guard raft.isLeader else { return nil }
        let time = now()
        lastStamp = time
        let timed = TimedInput(input, at: time)
        guard let index = raft.propose(timed.encode()) else { return nil }
        scheduleReady()
        return (index, raft.term, timed)
    }

    func readIndex(_ id: UInt64) {
        raft.readIndex(id)
        scheduleReady()
    }

    /// Notes the time of an applied entry, so a later leader never stamps earlier.
    func applied(at time: Timestamp) {
        if time > lastStamp { lastStamp = time }
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
        if raft.isLeader != wasLeader { leadershipChanged() }
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

    private func leadershipChanged() {
        wasLeader = raft.isLeader
        if wasLeader {
            // Continue the cluster's clock from the newest stamp in the log; the leaderless gap is not counted.
            leaderSince = .now()
            var base = lastStamp
            var index = raft.lastIndex
            while index > raft.snapshotIndex, let entry = raft.entry(at: index) {
                if !entry.data.isEmpty, let timed = try? TimedInput.decode(entry.data) {
                    base = max(base, timed.time)
                    break
                }
                index = index.advanced(by: -1)
            }
            leaderBase = base
            logger.info("leading", metadata: ["raft.term": "\(raft.term)", "raft.index": "\(raft.lastIndex)"])
        } else {
            logger.info("following", metadata: ["raft.term": "\(raft.term)", "leader": "\(leaderAddress ?? "unknown")"])
        }
        roleChanged(wasLeader)
    }
}
