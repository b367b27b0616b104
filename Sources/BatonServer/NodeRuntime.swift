import BatonCore
import BatonProtocol
import BatonRaft
import BatonStorage
import Logging
import NIOCore

/// Owns the state machine of one node and carries out what it decides: answers to connections,
/// a timer for the next deadline, and (on a durable node) the log that every input goes through
/// before it is applied. Lives on one event loop; every method runs there.
///
/// On a durable node an input is *proposed*: stamped with the time, added to the next batch of log
/// entries, written and synced with the whole batch by the log writer (group commit), and only then
/// applied and answered. So every answer a client sees is on disk, and a restart replays exactly
/// the inputs that were answered (and maybe some that were not yet). On an in-memory node an input
/// is applied at once.
final class NodeRuntime {
    let configuration: NodeConfiguration
    let eventLoop: any EventLoop
    let clock: NodeClock
    var logger: Logger
    private(set) var machine: StateMachine
    private let log: DurableLog?
    /// Who waits for the answer to a waiting command.
    private var routes: [WaitKey: Route] = [:]
    /// Open connections per client id; a client whose last connection closes is detached.
    private var connectionsPerClient: [ClientID: Int] = [:]
    private var connections: [ObjectIdentifier: ClientConnectionHandler] = [:]
    private var timer: (deadline: Timestamp, task: Scheduled<Void>)?
    private var idleSweep: RepeatedTask?
    private(set) var isShuttingDown = false
    /// The Raft driver of a cluster member; nil on a single node.
    let cluster: ClusterDriver?
    /// Commands proposed by this leader, by log index, until their entry is applied.
    private var proposals: [LogIndex: (term: Term, route: Route, input: TimedInput)] = [:]
    /// Reads waiting for their read index to be confirmed and applied, oldest (lowest id) first.
    private var reads: [(id: ReadID, read: PendingRead)] = []
    private var confirmedReads: [(index: LogIndex, id: ReadID)] = []
    private var nextReadID = ReadID.zero
    private var readIndexRequested = false

    struct PendingRead {
        var query: Query
        var route: Route
    }

    // The log pipeline (durable nodes only).
    private var pending: [Proposal] = []
    private var flushScheduled = false
    /// The index of the last entry handed to the log writer.
    private var loggedIndex: LogIndex
    private var pendingTick = PendingTick()
    private(set) var appliedIndex: LogIndex
    private var snapshotIndex: LogIndex
    private var snapshotInProgress = false
    /// The log writer's byte count when the last snapshot started.
    private var bytesWrittenAtSnapshot = 0

    struct WaitKey: Hashable {
        var clientID: ClientID
        var sequence: SequenceNumber
    }

    struct Route {
        var connection: any ReplySink
        var requestID: RequestID
        var opcode: Opcode
        /// When the request arrived, for the latency metric.
        var started: NIODeadline
    }

    let metrics: NodeMetrics
    /// Connections to flush once the answers of the current event-loop task are all queued.
    let flushQueue: FlushQueue

    /// An input on its way through the log, and who waits for its answer.
    struct Proposal {
        var input: TimedInput
        var route: Route?
    }

    /// A node whose state was recovered (or is new), ready to serve.
    init(
        configuration: NodeConfiguration, eventLoop: any EventLoop, recovered: RecoveredState, metrics: NodeMetrics,
        logger: Logger
    ) {
        self.metrics = metrics
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.flushQueue = FlushQueue(eventLoop: eventLoop)
        self.logger = logger
        self.machine = recovered.machine
        self.log = recovered.log
        self.appliedIndex = recovered.appliedIndex
        self.loggedIndex = recovered.appliedIndex
        self.snapshotIndex = recovered.snapshotIndex
        self.clock = NodeClock(resumingFrom: recovered.machine.now)
        if let raft = recovered.raft, let log = recovered.log {
            self.cluster = ClusterDriver(
                configuration: configuration, recovered: raft, stateTime: recovered.machine.now, nodeClock: clock, log: log,
                eventLoop: eventLoop, logger: logger)
        } else {
            self.cluster = nil
        }
    }

    /// Wires the Raft driver to this runtime, listens for peers and starts ticking (on the loop).
    func startCluster(tick: TimeAmount) -> EventLoopFuture<any Channel> {
        guard let cluster else { return eventLoop.makeFailedFuture(ConfigurationError(.notAClusterMember, "not a cluster member")) }
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        cluster.apply = { this.value.applyCommitted($0) }
        cluster.restore = { this.value.restore($0) }
        cluster.reads = { this.value.readsSettled(ready: $0, failed: $1) }
        cluster.roleChanged = { this.value.roleChanged(isLeader: $0) }
        cluster.failed = { error in
            this.value.logger.critical("log write failed; the node stops serving", metadata: ["error": "\(error)"])
            this.value.shutDown()
        }
        return cluster.transport.listen(host: configuration.host, port: cluster.me.raftPort).map { channel in
            this.value.cluster?.start(tick: tick)  // on the loop: the listener is bound on it
            return channel
        }
    }

    /// The answer for a request that reached a member which does not lead.
    var notLeader: Reply {
        let hint = cluster?.leaderAddress.map { "; leader=\($0)" } ?? "; no leader is known yet"
        return .error(.notLeader, "node \(configuration.nodeID) is not the leader\(hint)")
    }

    /// The time the node's answers are in: the cluster's time on a cluster member (leases expire by
    /// it), the node's own clock on a single node.
    var now: Timestamp { cluster?.now() ?? clock.now() }

    var helloReply: HelloReply {
        HelloReply(
            version: batonProtocolVersion, nodeID: configuration.nodeID, serverTime: now,
            maxFrameSize: UInt32(configuration.maxFrameSize), maxKeyLength: UInt16(configuration.limits.maxKeyLength),
            minTTL: Milliseconds(configuration.limits.minTTLMilliseconds),
            maxTTL: Milliseconds(configuration.limits.maxTTLMilliseconds),
            idleTimeout: Milliseconds(configuration.idleTimeoutMilliseconds))
    }

    // MARK: Connections

    func register(_ connection: ClientConnectionHandler) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func clientConnected(_ client: ClientID) {
        connectionsPerClient[client, default: 0] += 1
    }

    func connectionClosed(_ connection: ClientConnectionHandler, client: ClientID?) {
        connections[ObjectIdentifier(connection)] = nil
        sinkClosed(connection)
        if let client { clientDisconnected(client) }
    }

    /// Nobody listens on `sink` any more: answers for it are dropped.
    func sinkClosed(_ sink: any ReplySink) {
        routes = routes.filter { $0.value.connection !== sink }
        for i in pending.indices where pending[i].route?.connection === sink { pending[i].route = nil }
    }

    /// One connection of `client` closed; when it was the last, the client's waits are withdrawn.
    func clientDisconnected(_ client: ClientID) {
        guard let n = connectionsPerClient[client] else { return }
        if n > 1 {
            connectionsPerClient[client] = n - 1
            return
        }
        connectionsPerClient[client] = nil
        if !isShuttingDown { propose(.detach(client), route: nil) }
    }

    /// The requester of (client, sequence) gave up on it (an HTTP/2 stream reset): if the command
    /// waits, it leaves the line, so a lock is never granted to a request nobody listens for.
    func withdraw(_ client: ClientID, sequence: SequenceNumber) {
        if !isShuttingDown { propose(.withdraw(client, sequence), route: nil) }
    }

    // MARK: Requests

    /// Runs a command. Its answer goes to `connection` when it is ready: at once on an in-memory node,
    /// after the log write on a durable one, later still if the command waits.
    func execute(
        _ command: Command, sequence: SequenceNumber, client: ClientID, requestID: RequestID,
        from connection: any ReplySink, started: NIODeadline
    ) {
        let route = Route(connection: connection, requestID: requestID, opcode: command.opcode, started: started)
        if isShuttingDown {
            reply(.error(.shuttingDown, "node \(configuration.nodeID) is shutting down"), to: route)
            return
        }
        propose(.command(client, sequence, command), route: route)
    }

    /// Sends a command's answer and counts it. A lease it grants says how long it has left now, when
    /// it is sent (the answer may be a retry's, remembered since; PROTOCOL.md, "Lease time").
    private func reply(_ reply: Reply, to route: Route) {
        metrics.recordRequest(route.opcode, reply: reply, since: route.started)
        route.connection.deliver(reply.sent(at: now), requestID: route.requestID)
    }

    /// Answers from the applied state, as of that state's own time: everything it shows was on disk
    /// before it was applied, and a lease shows until its end is applied (by the tick the leader
    /// proposes when it falls due). Not at this node's clock: a new leader's clock may stand behind
    /// the last reading of the one before it, and a read filtered by it could show a lease the
    /// previous leader had already shown ended (the fault suite found this, seed 377112).
    func query(_ query: Query) -> Reply {
        if case .nodeStatus = query { return .status(status) }
        return machine.query(query)
    }

    /// Answers a query, now (the returned reply) or later (through `sink`, nil returned). On a cluster
    /// member it is linearizable: the leader confirms with a quorum that it still leads (read index)
    /// and answers once it has applied everything committed before the query arrived. Followers
    /// answer NODE_STATUS themselves and send everything else to the leader.
    func read(_ query: Query, requestID: RequestID, from sink: any ReplySink, started: NIODeadline) -> Reply? {
        guard let cluster else { return self.query(query) }
        if case .nodeStatus = query { return self.query(query) }
        guard cluster.raft.isLeader else { return notLeader }
        nextReadID = nextReadID.next
        reads.append((nextReadID, PendingRead(
            query: query, route: Route(connection: sink, requestID: requestID, opcode: query.opcode, started: started))))
        if !readIndexRequested {
            // One read index for every query that arrives in this event-loop turn.
            readIndexRequested = true
            eventLoop.execute { [this = NIOLoopBound(self, eventLoop: eventLoop)] in
                this.value.readIndexRequested = false
                this.value.cluster?.readIndex(this.value.nextReadID)
            }
        }
        return nil
    }

    /// Read ids up to each confirmed id may be answered once their index is applied.
    private func readsSettled(ready: [(id: ReadID, index: LogIndex)], failed: [ReadID]) {
        for r in ready { confirmedReads.append((r.index, r.id)) }
        if let upTo = failed.max() {
            for read in takeReads(upTo: upTo) { reply(notLeader, to: read.route) }
        }
        answerReads()
    }

    private func answerReads() {
        while let first = confirmedReads.first, first.index <= appliedIndex {
            confirmedReads.removeFirst()
            for read in takeReads(upTo: first.id) { reply(query(read.query), to: read.route) }
        }
    }

    /// Removes and returns the pending reads with ids up to `id`.
    private func takeReads(upTo id: ReadID) -> [PendingRead] {
        let n = reads.firstIndex { $0.id > id } ?? reads.count
        defer { reads.removeFirst(n) }
        return reads[..<n].map(\.read)
    }

    /// The address clients reach this node at (set once the listener is bound).
    var address = ""
    private let started = NIODeadline.now()

    func refreshMetrics() {
        metrics.refresh(status, machine: machine)
    }

    var status: NodeStatus {
        NodeStatus(
            nodeID: configuration.nodeID, address: address, role: role, term: cluster?.raft.term.rawValue ?? 1,
            commitIndex: cluster?.raft.commit.rawValue ?? appliedIndex.rawValue, appliedIndex: appliedIndex.rawValue,
            uptimeMilliseconds: UInt64((NIODeadline.now() - started).nanoseconds / 1_000_000),
            serverTime: now, connections: UInt32(connections.count + http2Connections.count), durable: log != nil,
            summary: machine.summary(at: now))
    }

    private var role: NodeStatus.Role {
        guard let raft = cluster?.raft else { return .standalone }
        switch raft.role {
        case .leader: return .leader
        case .follower: return .follower
        case .preCandidate, .candidate: return .candidate
        }
    }

    private func propose(_ input: StateMachineInput, route: Route?) {
        if let cluster {
            guard let (index, term, timed) = cluster.propose(input) else {
                if let route { reply(notLeader, to: route) }
                return
            }
            if let route { proposals[index] = (term, route, timed) }
            return
        }
        let timed = TimedInput(input, at: clock.now())
        guard log != nil else {
            apply(timed, route: route)
            armTimer()
            return
        }
        pending.append(Proposal(input: timed, route: route))
        if !flushScheduled {
            flushScheduled = true
            // After everything this event-loop tick reads: one batch, one write, one sync.
            eventLoop.execute { [this = NIOLoopBound(self, eventLoop: eventLoop)] in this.value.flush() }
        }
    }

    /// Hands the pending batch to the log writer. Batches complete in order; the writer groups
    /// whatever arrives while it syncs into its next write (group commit).
    private func flush() {
        flushScheduled = false
        guard let log, !pending.isEmpty, !isShuttingDown else { return }
        let batch = pending
        pending = []
        let first = LogIndex(loggedIndex.rawValue + 1)
        loggedIndex = LogIndex(loggedIndex.rawValue + UInt64(batch.count))
        let this = NIOLoopBound((runtime: self, batch: batch), eventLoop: eventLoop)
        log.write(batch.map(\.input), startingAt: first, on: eventLoop).whenComplete { result in
            let runtime = this.value.runtime
            switch result {
            case .success:
                for proposal in this.value.batch { runtime.apply(proposal.input, route: proposal.route) }
                runtime.armTimer()
                runtime.maybeSnapshot()
            case .failure(let error):
                // Nothing more can be made durable: stop answering rather than answer wrongly.
                runtime.logger.critical("log write failed; the node stops serving", metadata: ["error": "\(error)"])
                runtime.shutDown()
            }
        }
    }

    /// A committed entry of the cluster's log, in order.
    private func applyCommitted(_ entry: LogEntry) {
        var route: Route?
        var proposed: TimedInput?
        if let proposal = proposals.removeValue(forKey: entry.index) {
            if proposal.term == entry.term {
                (route, proposed) = (proposal.route, proposal.input)  // this entry: no need to decode it
            } else {
                reply(notLeader, to: proposal.route)  // another leader's entry took its place: retry
            }
        }
        guard !entry.data.isEmpty, let timed = proposed ?? (try? TimedInput.decode(entry.data)) else {
            appliedIndex = entry.index  // a new leader's empty entry
            answerReads()
            return
        }
        appliedIndex = LogIndex(entry.index.rawValue - 1)
        cluster?.applied(at: timed.time)
        apply(timed, route: route)
        armTimer()
        answerReads()
        maybeSnapshot()
    }

    /// Replaces the state with the leader's snapshot (this member fell too far behind).
    private func restore(_ snapshot: Snapshot) {
        do {
            machine = try StateMachine(restoring: ByteBuffer(bytes: snapshot.data), configuration: configuration.stateMachine)
            appliedIndex = snapshot.index
            snapshotIndex = snapshot.index
            cluster?.applied(at: machine.now)
            logger.info("installed the leader's snapshot", metadata: ["raft.index": "\(snapshot.index)"])
        } catch {
            logger.critical("the leader's snapshot does not decode; the node stops serving", metadata: ["error": "\(error)"])
            shutDown()
        }
    }

    /// Losing leadership: everyone waiting here is told to go to the new leader (their commands may
    /// still commit; a retry with the same sequence number learns the outcome).
    private func roleChanged(isLeader: Bool) {
        guard !isLeader else {
            armTimer()
            scheduleAbsentClientCheck()
            return
        }
        let waiting = Array(proposals.values.map(\.route)) + Array(routes.values)
        proposals.removeAll()
        routes.removeAll()
        for route in waiting { reply(notLeader, to: route) }
        let pendingReads = reads.map(\.read.route)
        reads.removeAll()
        confirmedReads.removeAll()
        for route in pendingReads { reply(notLeader, to: route) }
    }

    /// A new leader's log holds the waits of clients connected to the old leader. The client
    /// library sends a wait again when its connection breaks, so its clients connect here within
    /// seconds; the waits of clients that do not (they died too) are withdrawn after the grace, as
    /// if their last connection had closed here, so no lock or job is granted to nobody.
    private func scheduleAbsentClientCheck() {
        guard let term = cluster?.raft.term else { return }
        let grace = TimeAmount.milliseconds(Int64(configuration.absentClientGraceMilliseconds))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: grace) {
            let runtime = this.value
            guard let raft = runtime.cluster?.raft, raft.isLeader, raft.term == term, !runtime.isShuttingDown else { return }
            let absent = runtime.machine.waitingClients.filter { runtime.connectionsPerClient[$0] == nil }
            for client in absent.sorted(by: { $0.rawValue < $1.rawValue }) { runtime.propose(.detach(client), route: nil) }
            if !absent.isEmpty {
                runtime.logger.info("withdrew the waits of clients that did not reconnect", metadata: ["clients": "\(absent.count)"])
            }
        }
    }

    private func apply(_ timed: TimedInput, route: Route?) {
        let applied = machine.apply(timed.input, at: timed.time)
        appliedIndex = LogIndex(appliedIndex.rawValue + 1)
        if case .tick = timed.input { pendingTick.applied() }
        if case .withdraw(let client, let sequence) = timed.input {
            routes[WaitKey(clientID: client, sequence: sequence)] = nil
        }
        if let route {
            if let answer = applied.reply {
                reply(answer, to: route)
            } else if case .command(let client, let sequence, _) = timed.input {
                routes[WaitKey(clientID: client, sequence: sequence)] = route
            }
        }
        for completion in applied.completions {
            let key = WaitKey(clientID: completion.clientID, sequence: completion.sequence)
            guard let route = routes.removeValue(forKey: key) else { continue }
            reply(completion.reply, to: route)
        }
    }

    // MARK: Time

    /// Keeps one timer set for the state machine's next deadline.
    private func armTimer() {
        guard let next = machine.nextDeadline, !isShuttingDown else { return }
        if let cluster, !cluster.raft.isLeader { return }  // followers apply the leader's ticks
        if let timer, timer.deadline <= next { return }
        timer?.task.cancel()
        let delay = max(1, now.distance(to: next))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let task = eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
            this.value.timer = nil
            this.value.deadlineReached()
        }
        timer = (next, task)
    }

    /// A lease, a wait or a retention may have ended: let time pass in the state machine. On a
    /// durable node the tick goes through the log, so what it settles (a lock passed to a waiter) is on
    /// disk before anyone hears of it.
    private func deadlineReached() {
        if let cluster {
            // Only the leader lets time pass, through the log; followers apply its ticks.
            let term = cluster.raft.term
            if cluster.raft.isLeader, !pendingTick.isPending(in: term), machine.hasDueWork(at: cluster.now()) {
                pendingTick.proposed(in: term)
                propose(.tick, route: nil)
            }
            armTimer()
            return
        }
        let now = clock.now()
        guard machine.hasDueWork(at: now) else {
            armTimer()
            return
        }
        if log == nil {
            apply(TimedInput(.tick, at: now), route: nil)
            armTimer()
        } else if !pendingTick.isPending(in: Term(1)) {
            pendingTick.proposed(in: Term(1))  // a single node: one term, and its ticks are never lost
            propose(.tick, route: nil)
        }
    }

    // MARK: Snapshots

    /// Takes a snapshot in the background once enough entries have been applied, or enough bytes
    /// logged, since the last one. The state machine is a value: the copy taken here is encoded and
    /// written on another thread while this loop keeps applying.
    private func maybeSnapshot() {
        guard let log, !snapshotInProgress else { return }
        let entries = appliedIndex.rawValue - snapshotIndex.rawValue
        let bytes = log.bytesWritten - bytesWrittenAtSnapshot
        guard entries >= UInt64(configuration.snapshotEveryEntries) || (entries > 0 && bytes >= configuration.snapshotEveryBytes)
        else { return }
        snapshotInProgress = true
        bytesWrittenAtSnapshot = log.bytesWritten
        let copy = machine
        let index = appliedIndex
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let term = cluster?.raft.term(at: index) ?? Term(1)
        log.snapshot(copy, at: index, term: term, on: eventLoop).whenComplete { result in
            let runtime = this.value
            runtime.snapshotInProgress = false
            switch result {
            case .success(let snapshot):
                runtime.snapshotIndex = index
                runtime.cluster?.compact(to: snapshot)
                runtime.logger.info("snapshot written", metadata: ["raft.index": "\(index)", "snapshot.bytes": "\(snapshot.data.count)"])
            case .failure(let error):
                runtime.logger.error("snapshot failed; the log keeps growing", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Shutdown

    /// Starts the timers of a node that has just started: the idle sweep, and the deadline of what
    /// its recovered state has due (a lease that was running when it stopped ends without waiting
    /// for another request to arrive).
    func startTimers() {
        startIdleSweep()
        armTimer()
    }

    /// Closes idle connections: every quarter of the idle timeout, each connection that sent nothing
    /// for the whole timeout and waits on nothing is closed.
    private func startIdleSweep() {
        let idle = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds))
        let every = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds / 4))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        idleSweep = eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            let cutoff = NIODeadline.now() - idle
            for connection in this.value.connections.values { connection.closeIfIdle(since: cutoff) }
        }
    }

    /// Stops the timers and tells every connection the node is going away.
    func shutDown() {
        isShuttingDown = true
        cluster?.stop()
        timer?.task.cancel()
        timer = nil
        idleSweep?.cancel()
        idleSweep = nil
        for connection in connections.values { connection.shutDown() }
        for connection in http2Connections.values { connection.shutDown() }
    }

    private var http2Connections: [ObjectIdentifier: HTTP2ConnectionHandler] = [:]

    func register(_ connection: HTTP2ConnectionHandler) {
        http2Connections[ObjectIdentifier(connection)] = connection
    }

    func unregister(_ connection: HTTP2ConnectionHandler) {
        http2Connections[ObjectIdentifier(connection)] = nil
    }

    var connectionCount: Int { connections.count }
}
