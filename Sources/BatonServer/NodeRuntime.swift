import BatonCore
import BatonNode
import BatonProtocol
import BatonRaft
import BatonStorage
import Logging
import NIOCore

/// The shell of a node: steps events into its `Node` and carries out the actions that come back on
/// SwiftNIO (see `NodeAction` for the handling loop). It owns the I/O: the connections and the routes
/// of their answers, the storage, the peer transport, the timers and the metrics. It decides nothing
/// about the cluster; a single node and a cluster member run the same code. Lives on one event loop;
/// every method runs there.
final class NodeRuntime {
    let configuration: NodeConfiguration
    let eventLoop: any EventLoop
    var logger: Logger
    private(set) var node: Node
    private let storage: any NodeStorage
    /// The other members; nil on a node configured without a cluster.
    private let transport: PeerTransport?
    let metrics: NodeMetrics
    /// Connections to flush once the answers of the current event-loop task are all queued.
    let flushQueue: FlushQueue

    /// Who waits for each answer the node will give.
    private var routes = RouteTable()
    /// Like refusals (one message, user and host) are logged at most once per 10 s.
    private var auditThrottle = AuditThrottle()
    private var connections: [ObjectIdentifier: ClientConnectionHandler] = [:]
    private var http2Connections: [ObjectIdentifier: HTTP2ConnectionHandler] = [:]
    private var timer: Scheduled<Void>?
    private var ticker: LoopTicker?
    private var idleSweep: RepeatedTask?
    /// Every second: closes pending connections past their handshake deadline and connections
    /// whose frame is too slow to arrive.
    private var deadlineSweep: RepeatedTask?
    /// Which connections are taken (caps and the share kept for clients that finished their handshake).
    private var admission: ConnectionAdmission
    private(set) var isShuttingDown = false
    /// Told once why the node stopped serving when it cannot go on (a failed log write, a snapshot
    /// that does not decode): the process then exits non-zero, so its supervisor restarts it.
    var onFatalStop: @Sendable (String) -> Void = { _ in }
    // The handling loop: events that arrive while actions are carried out wait their turn.
    private var inbox: [NodeEvent] = []
    private var handling = false
    private var actions: [NodeAction] = []
    private var endOfTurnScheduled = false
    /// What `scheduleEndOfTurn` submits: made once (in `start`), as a new closure for each turn
    /// would be an allocation per request; dropped at shutdown, which ends the cycle through `self`.
    private var endOfTurnTask: (@Sendable () -> Void)?

    struct Route {
        var connection: any ReplySink
        var requestID: RequestID
        var opcode: Opcode
        /// When the request arrived, for the latency metric.
        var started: NIODeadline
        /// The authenticated user and the client, for the audit log of admin operations.
        var user: String?
        var client: ClientID?
    }

    /// A node whose state was recovered (or is new), ready to serve.
    init(
        configuration: NodeConfiguration, eventLoop: any EventLoop, recovered: RecoveredState, metrics: NodeMetrics,
        adminToken: TokenHash? = nil, peerTLS: PeerTransport.TLS? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.configuration = configuration
        self.admission = ConnectionAdmission(
            maxConnections: FileDescriptorLimit.connections(configured: configuration.maxConnections),
            maxPendingPerHost: configuration.maxPendingConnectionsPerHost)
        self.eventLoop = eventLoop
        self.flushQueue = FlushQueue(eventLoop: eventLoop)
        self.logger = logger
        self.storage = recovered.storage
        var nodeConfiguration = configuration.node
        nodeConfiguration.authBootstrap = adminToken
        self.node = Node(
            configuration: nodeConfiguration, recovered: recovered.node, seed: UInt64.random(in: 0...UInt64.max),
            wall: SystemClock.wall(), at: SystemClock.monotonic())
        if let membership = configuration.membership {  // a configured member listens on its raftPort, even alone
            let peers = membership.peers.mapValues { (host: $0.host, port: $0.raftPort) }
            self.transport = PeerTransport(eventLoop: eventLoop, peers: peers, tls: peerTLS, maxFrameSize: 1 << 28, logger: logger)
        } else {
            self.transport = nil
        }
    }

    /// Starts the node on its loop: it listens for its peers (if it has any), ticks, sweeps idle
    /// connections, and sets the timer of what its recovered state has due (a lease that was running
    /// when it stopped ends without waiting for another request to arrive).
    func start() -> EventLoopFuture<(any Channel)?> {
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let tick = TimeAmount.milliseconds(Int64(configuration.tickMilliseconds))
        ticker = LoopTicker(every: tick, on: eventLoop) { this.value.handle(.tick(wall: SystemClock.wall())) }
        endOfTurnTask = { this.value.handle(.endOfTurn) }
        startIdleSweep()
        deadlineSweep = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let now = NIODeadline.now()
            for connection in this.value.connections.values { connection.enforceDeadlines(now: now) }
            for connection in this.value.http2Connections.values { connection.enforceDeadlines(now: now) }
        }
        handle(.endOfTurn)  // what the node did when it started (a cluster of one elected itself)
        guard let transport, let me = configuration.membership?.mine else { return eventLoop.makeSucceededFuture(nil) }
        transport.receive = { this.value.handle(.message($0)) }
        transport.lowestVersionChanged = { this.value.handle(.peerProtocol(lowest: $0)) }
        return transport.listen(host: configuration.host, port: me.raftPort).map { $0 }
    }

    // MARK: The handling loop

    /// Steps `event` into the node and carries out its actions; events raised meanwhile (a storage
    /// that completes at once) are stepped after, in order. Once per loop turn the node's Ready is
    /// handed out (`endOfTurn`).
    private func handle(_ event: NodeEvent) {
        guard !isShuttingDown else { return }
        inbox.append(event)
        guard !handling else { return }
        // Answers delivered while the events are stepped are flushed once they all are, in this
        // task, rather than in a task of their own (an allocation per request).
        flushQueue.hold()
        defer { flushQueue.release() }
        handling = true
        var i = 0
        // Something was stepped since the last end of a turn.
        var unfinished = false
        var extraTurn = false
        while i < inbox.count {
            let next = inbox[i]
            i += 1
            if case .endOfTurn = next {
                endOfTurnScheduled = false
                unfinished = false
            } else {
                unfinished = true
            }
            node.step(next, at: SystemClock.monotonic(), into: &actions)
            perform()
            // A storage that completes at once (the memory log) reported its persist during this
            // turn's end: hand out what that committed now, not a loop turn later.
            if i == inbox.count, unfinished, !extraTurn, case .endOfTurn = inbox[0] {
                extraTurn = true
                inbox.append(.endOfTurn)
            }
        }
        inbox.removeAll(keepingCapacity: true)
        handling = false
        if unfinished { scheduleEndOfTurn() }
    }

    private func scheduleEndOfTurn() {
        guard !endOfTurnScheduled else { return }
        endOfTurnScheduled = true
        // After everything this turn of the loop reads: one Ready, one write, one sync.
        guard let endOfTurnTask else { return }
        eventLoop.execute(endOfTurnTask)
    }

    private func perform() {
        guard !actions.isEmpty else { return }
        for action in actions {
            switch action {
            case .answer(let id, let reply):
                guard let route = routes.remove(id) else { continue }  // its connection closed
                metrics.recordRequest(route.opcode, reply: reply, since: route.started)
                audit(route, reply)
                route.connection.deliver(reply, requestID: route.requestID)
            case .send(let messages):
                guard let transport else { continue }
                for message in messages { transport.send(message) }
                transport.flush()
            case .persist(let id, let snapshot, let entries, let hardState, let sync):
                if storage.persistsAtOnce {
                    // Nothing to wait for (the memory log): no future and no callback to allocate.
                    handle(.persisted(id))
                    continue
                }
                let this = NIOLoopBound(self, eventLoop: eventLoop)
                storage.persist(snapshot: snapshot, entries: entries, hardState: hardState, sync: sync, on: eventLoop)
                    .whenComplete { result in
                        switch result {
                        case .success: this.value.handle(.persisted(id))
                        case .failure(let error): this.value.stop(because: "log write failed", error)
                        }
                    }
            case .setTimer(let at):
                timer?.cancel()
                let this = NIOLoopBound(self, eventLoop: eventLoop)
                timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(at * 1_000_000)) { this.value.handle(.timer) }
            case .saveSnapshot(let machine, let index, let term):
                let this = NIOLoopBound(self, eventLoop: eventLoop)
                storage.snapshot(machine, at: index, term: term, on: eventLoop).whenComplete { result in
                    let runtime = this.value
                    switch result {
                    case .success(let snapshot):
                        runtime.logger.info(
                            "snapshot written", metadata: ["raft.index": "\(index)", "snapshot.bytes": "\(snapshot.data.count)"])
                        runtime.handle(.snapshotSaved(snapshot))
                    case .failure(let error as SnapshotSuperseded):
                        runtime.logger.info(
                            "snapshot dropped: a newer one is in place", metadata: ["raft.index": "\(index)", "newer": "\(error.newer)"])
                        runtime.handle(.snapshotFailed)
                    case .failure(let error):
                        runtime.logger.error("snapshot failed; the log keeps growing", metadata: ["error": "\(error)"])
                        runtime.handle(.snapshotFailed)
                    }
                }
            case .leading(let term, let lastIndex, let time):
                logger.info("leading", metadata: ["raft.term": "\(term)", "raft.index": "\(lastIndex)", "time": "\(time)"])
            case .following(let term, let leader):
                let address = configuration.membership?[leader]?.clientAddress ?? "unknown"
                logger.info("following", metadata: ["raft.term": "\(term)", "leader": "\(address)"])
            case .installedSnapshot(let index):
                logger.info("installed the leader's snapshot", metadata: ["raft.index": "\(index)"])
            case .schedulesSettled(let outcomes, let time):
                metrics.schedulesSettled(outcomes, at: time)
            case .withdrewAbsentClients(let count):
                logger.info("withdrew the waits of clients that did not reconnect", metadata: ["clients": "\(count)"])
            case .halt(let reason):
                stop(because: reason, nil)
            }
        }
        actions.removeAll(keepingCapacity: true)
    }

    /// Admin operations that were applied, and requests refused for lack of a token or a permission,
    /// go to the log with the user and the client's address.
    private func audit(_ route: Route, _ reply: Reply) {
        let denied: Bool
        if case .error(let e) = reply {
            denied = e.code == .unauthenticated || e.code == .permissionDenied
            guard denied else { return }
        } else {
            denied = false
            guard Self.auditedOpcodes.contains(route.opcode) else { return }
        }
        let metadata: Logger.Metadata = [
            "op": "\(route.opcode)", "user": "\(LogText.escaped(route.user ?? "-"))", "client.id": "\(route.client.map { "\($0)" } ?? "-")",
            "peer": "\(route.connection.peerDescription)",
        ]
        if case .error(let e) = reply, denied {
            let group = AuditThrottle.group(e.code, user: route.user, peer: route.connection.peerDescription)
            guard case .log(let suppressed) = auditThrottle.admit(group, now: NIODeadline.now().uptimeNanoseconds) else {
                return
            }
            logger.notice("request refused: \(LogText.escaped(e.message))\(Self.suppressedNote(suppressed))", metadata: metadata)
        } else {
            logger.notice("admin operation applied", metadata: metadata)
        }
    }

    private static func suppressedNote(_ suppressed: Int) -> String {
        suppressed == 0 ? "" : " (and \(suppressed) more like it from this host since the last such line)"
    }

    /// The operations whose success the audit log records.
    static let auditedOpcodes: Set<Opcode> = Opcode.authChanges.union(Opcode.scheduleChanges).union([
        .tokenAdd, .lockForceRelease, .jobPurge, .jobDelete, .jobRequeue, .schedulePut, .scheduleTrigger,
    ])

    /// Nothing more can be made durable, or the state is lost: stop answering rather than answer
    /// wrongly, and have the process exit non-zero (its supervisor restarts it, and it recovers from
    /// its data directory).
    private func stop(because reason: String, _ error: (any Error)?) {
        guard !isShuttingDown else { return }
        logger.critical("\(reason); the node stops serving and the process exits", metadata: error.map { ["error": "\($0)"] } ?? [:])
        shutDown()
        onFatalStop(error.map { "\(reason): \($0)" } ?? reason)
    }

    private func route(
        _ connection: any ReplySink, requestID: RequestID, opcode: Opcode, started: NIODeadline, user: String? = nil,
        client: ClientID? = nil
    ) -> RouteID {
        routes.insert(Route(connection: connection, requestID: requestID, opcode: opcode, started: started, user: user, client: client))
    }

    // MARK: Requests

    /// The address clients reach this node at (set once the listener is bound).
    var address = ""
    private let started = NIODeadline.now()

    /// The cluster's time (leases expire by it): on the leader, what it stamps next; elsewhere an estimate.
    var now: Timestamp { node.now(at: SystemClock.monotonic()) }

    /// The HTTP/2 address of the member whose client address is `clientAddress`, if the cluster's
    /// configuration gives its `http2Port` (what `baton-leader` names to HTTP/2 clients).
    func http2Address(ofMemberAt clientAddress: String) -> String? {
        configuration.cluster?.first { $0.clientAddress == clientAddress }?.http2Address
    }

    /// The answer to a HELLO that agreed protocol `version`.
    func helloReply(version: UInt16) -> HelloReply {
        HelloReply(
            version: version, nodeID: configuration.nodeID, serverTime: now,
            maxFrameSize: UInt32(configuration.maxFrameSize), maxKeyLength: UInt16(configuration.limits.maxKeyLength),
            minTTL: Milliseconds(configuration.limits.minTTLMilliseconds),
            maxTTL: Milliseconds(configuration.limits.maxTTLMilliseconds),
            idleTimeout: Milliseconds(configuration.idleTimeoutMilliseconds))
    }

    /// Runs a command through the log. Its answer goes to `connection` once its entry is applied
    /// (later still if the command waits).
    func execute(
        _ command: Command, sequence: SequenceNumber, client: ClientID, requestID: RequestID,
        from connection: any ReplySink, started: NIODeadline, by principal: Principal? = nil
    ) {
        var refusal: Reply?
        if isShuttingDown {
            refusal = .error(.shuttingDown, "node \(configuration.nodeID) is shutting down")
        } else if principal == nil, node.machine.auth.enabled {
            // Refused at once, not logged: the state machine would refuse it as it applies it anyway.
            refusal = .error(.unauthenticated, "authentication is on: send AUTH with a token first")
        }
        if let refusal {
            metrics.recordRequest(command.opcode, reply: refusal, since: started)
            connection.deliver(refusal, requestID: requestID)
            return
        }
        let id = route(connection, requestID: requestID, opcode: command.opcode, started: started, user: principal?.user, client: client)
        handle(.command(id, client, sequence, command, by: principal))
    }

    /// The user a bearer token belongs to, checked against this member's copy of the auth store. Only
    /// the leader refuses a token no user holds (UNAUTHENTICATED, counted as `unknown_token`): another
    /// member's copy may lag behind (restarted, or the token just added), so it answers NOT_LEADER
    /// naming the leader, and a member still turning authentication on answers as it does to any
    /// request (PROTOCOL.md §6, AUTH; issue 35).
    func authenticate(_ token: String, peer: String, client: ClientID?) -> Result<Principal, ErrorReply> {
        let clientID = client.map { "\($0)" } ?? "-"
        if let principal = node.machine.auth.authenticate(TokenHash(of: token)) {
            logger.debug("authenticated", metadata: ["user": "\(LogText.escaped(principal.user))", "client.id": "\(clientID)", "peer": "\(peer)"])
            return .success(principal)
        }
        if node.awaitsAuthentication, case .error(let starting) = node.startingUp { return .failure(starting) }
        if !node.isLeader, case .error(let redirect) = node.notLeader { return .failure(redirect) }
        let group = AuditThrottle.group(.unauthenticated, user: nil, peer: peer)
        if case .log(let suppressed) = auditThrottle.admit(group, now: NIODeadline.now().uptimeNanoseconds) {
            logger.notice(
                "authentication refused: no user holds the token\(Self.suppressedNote(suppressed))",
                metadata: ["client.id": "\(clientID)", "peer": "\(peer)"])
        }
        return .failure(ErrorReply(.unauthenticated, "no user holds this token"))
    }

    /// Answers a query, now (the returned reply) or later (through `sink`, nil returned). Reads are
    /// linearizable: the leader confirms with a quorum that it still leads (read index) and answers
    /// once it has applied everything committed before the query arrived. Every member answers
    /// NODE_STATUS itself; other members send everything else to the leader.
    func read(
        _ query: Query, requestID: RequestID, from sink: any ReplySink, started: NIODeadline, by principal: Principal? = nil
    ) -> Reply? {
        if case .nodeStatus = query {
            if node.awaitsAuthentication { return node.startingUp }
            if let refusal = node.machine.refusal(query, by: principal) { return .error(refusal) }
            return .status(status)
        }
        handle(.read(route(sink, requestID: requestID, opcode: query.opcode, started: started, user: principal?.user), query, by: principal))
        return nil
    }

    // MARK: Connections

    /// Whether to take a connection from `host` (see `ConnectionAdmission`); a refusal is logged.
    func admit(from host: String) -> ConnectionAdmission.Verdict {
        let verdict = admission.arrive(from: host)
        if case .refuse(let why) = verdict {
            let group = AuditThrottle.group(.quotaExceeded, user: nil, peer: host)
            if case .log(let suppressed) = auditThrottle.admit(group, now: NIODeadline.now().uptimeNanoseconds) {
                logger.notice("connection refused: \(why)\(Self.suppressedNote(suppressed))", metadata: ["peer": "\(host)"])
            }
        }
        return verdict
    }

    /// An admitted connection from `host` said HELLO (and, with authentication on, proved a user).
    func handshakeCompleted(from host: String) {
        admission.handshakeCompleted(from: host)
    }

    /// An admitted connection from `host` closed.
    func connectionLeft(from host: String, stillPending: Bool) {
        admission.left(from: host, stillPending: stillPending)
    }

    /// Whether a connection must prove a user before its handshake is complete.
    var authenticationRequired: Bool { node.machine.auth.enabled || node.awaitsAuthentication }

    func register(_ connection: ClientConnectionHandler) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func register(_ connection: HTTP2ConnectionHandler) {
        http2Connections[ObjectIdentifier(connection)] = connection
    }

    func unregister(_ connection: HTTP2ConnectionHandler) {
        http2Connections[ObjectIdentifier(connection)] = nil
    }


    func clientConnected(_ client: ClientID) {
        handle(.clientConnected(client))
    }

    func connectionClosed(_ connection: ClientConnectionHandler, client: ClientID?) {
        connections[ObjectIdentifier(connection)] = nil
        sinkClosed(connection)
        if let client { clientDisconnected(client) }
    }

    /// Nobody listens on `sink` any more: answers for it are dropped.
    func sinkClosed(_ sink: any ReplySink) {
        routes.removeAll { $0.connection === sink }
    }

    /// One connection of `client` closed; when it was the last, the client's waits are withdrawn.
    func clientDisconnected(_ client: ClientID) {
        handle(.clientDisconnected(client))
    }

    /// The requester of (client, sequence) gave up on it (an HTTP/2 stream reset): if the command
    /// waits, it leaves the line, so a lock is never granted to a request nobody listens for.
    func withdraw(_ client: ClientID, sequence: SequenceNumber) {
        handle(.withdrawn(client, sequence))
    }

    // MARK: Status

    func refreshMetrics() {
        metrics.refresh(status, machine: node.machine)
    }

    var status: NodeStatus {
        let now = self.now
        return NodeStatus(
            nodeID: configuration.nodeID, address: address, role: role, term: node.raft.term.rawValue,
            commitIndex: node.raft.commit.rawValue, appliedIndex: node.appliedIndex.rawValue,
            uptimeMilliseconds: UInt64((NIODeadline.now() - started).nanoseconds / 1_000_000),
            serverTime: now, connections: UInt32(connections.count + http2Connections.count), durable: storage.isDurable,
            summary: node.machine.summary(at: now))
    }

    private var role: NodeStatus.Role {
        if node.raft.configuration.members.count == 1 { return .standalone }
        switch node.raft.role {
        case .leader: return .leader
        case .follower: return .follower
        case .preCandidate, .candidate: return .candidate
        }
    }

    // MARK: Timers and shutdown

    /// Closes idle connections: every quarter of the idle timeout, each connection that sent nothing
    /// for the whole timeout and waits on nothing is closed.
    private func startIdleSweep() {
        let idle = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds))
        let every = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds / 4))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        idleSweep = eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            let cutoff = NIODeadline.now() - idle
            for connection in this.value.connections.values { connection.closeIfIdle(since: cutoff) }
            for connection in this.value.http2Connections.values { connection.closeIfIdle(since: cutoff) }
        }
    }

    /// Stops the timers and tells every connection the node is going away.
    func shutDown() {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        transport?.close()
        ticker?.cancel()
        ticker = nil
        endOfTurnTask = nil
        timer?.cancel()
        timer = nil
        idleSweep?.cancel()
        idleSweep = nil
        deadlineSweep?.cancel()
        deadlineSweep = nil
        // Every request still open (a waiting acquire or claim, a command not yet applied) gets an
        // answer of its own first (PROTOCOL.md §1); then each connection gets its goodbye.
        let goodbye = Reply.error(.shuttingDown, "node \(configuration.nodeID) is shutting down")
        for route in routes.takeAll() {
            metrics.recordRequest(route.opcode, reply: goodbye, since: route.started)
            route.connection.deliver(goodbye, requestID: route.requestID)
        }
        for connection in connections.values { connection.shutDown() }
        for connection in http2Connections.values { connection.shutDown() }
    }
}
