import BatonCore
import BatonProtocol
import BatonRaft
import DequeModule
import NIOCore

/// One Baton node's logic, whole: the Raft core, the state machine, the cluster's clock, the
/// proposals in flight, the linearizable reads and the routes of the answers. A value with no I/O and
/// no clock: `step(_:at:into:)` takes an event and the monotonic clock's reading and returns actions
/// (see `NodeAction` for the handling loop). The server's `NodeRuntime` carries the actions out on
/// SwiftNIO; the simulator carries them out on simulated disks and networks.
///
/// A single node is a cluster of one: it elects itself when it starts, and every command goes
/// through its log like a member's. On a node without a data directory that log is in memory.
///
/// **Time.** The leader stamps every entry with the cluster's time (`ClusterClock`, which holds the
/// rules) and puts it in its heartbeats, so a new leader continues from the newest stamp in its log or
/// the newest time its old leader's heartbeats told, whichever is later (and may be trusted). A change
/// of role is taken in hand as soon as Raft makes it, so no entry is stamped by a member that leads in
/// Raft's eyes but has not yet taken office on the clock.
package struct Node: Sendable {
    /// What a node is configured with.
    package struct Configuration: Sendable {
        /// The name in answers ("node n1 is not the leader").
        package var nodeID: String
        package var raft: RaftConfiguration
        package var me: NodeIndex
        /// Where clients reach each member, for the leader hint in NOT_LEADER answers.
        package var clientAddresses: [NodeIndex: String]
        package var stateMachine: StateMachine.Configuration
        /// How long a new leader waits for the clients of the old one to reconnect before it
        /// withdraws their waits.
        package var absentClientGraceMilliseconds: UInt64
        package var snapshotEveryEntries: Int
        package var snapshotEveryBytes: Int
        /// Old bugs put back, for the simulator's negative controls only.
        package var faults = InjectedFaults()
        /// The hash of the configured admin token: a leader that finds it not installed proposes
        /// `StateMachineInput.bootstrapAuth` with it (authentication is on from then). Nil: none.
        package var authBootstrap: TokenHash?
        /// The lowest peer protocol version the other members speak, until `NodeEvent.peerProtocol`
        /// says otherwise (0: not known; a test sets it).
        package var peerProtocol: UInt16 = 0

        package init(
            nodeID: String, raft: RaftConfiguration, me: NodeIndex, clientAddresses: [NodeIndex: String] = [:],
            stateMachine: StateMachine.Configuration = .init(), absentClientGraceMilliseconds: UInt64 = 10_000,
            snapshotEveryEntries: Int = 100_000, snapshotEveryBytes: Int = 64 << 20
        ) {
            self.nodeID = nodeID
            self.raft = raft
            self.me = me
            self.clientAddresses = clientAddresses
            self.stateMachine = stateMachine
            self.absentClientGraceMilliseconds = absentClientGraceMilliseconds
            self.snapshotEveryEntries = snapshotEveryEntries
            self.snapshotEveryBytes = snapshotEveryBytes
        }
    }

    /// What a node starts from: what it persisted, or nothing (a new node).
    package struct Recovered: Sendable {
        package var hardState: HardState
        package var snapshot: Snapshot
        /// The state `snapshot` holds (a new state machine for the empty snapshot).
        package var machine: StateMachine
        /// The entries after the snapshot. They are applied again as Raft hands them out committed.
        package var entries: [LogEntry]

        package init(hardState: HardState, snapshot: Snapshot, machine: StateMachine, entries: [LogEntry]) {
            self.hardState = hardState
            self.snapshot = snapshot
            self.machine = machine
            self.entries = entries
        }

        /// A node with no past.
        package static func new(_ configuration: StateMachine.Configuration) -> Recovered {
            Recovered(hardState: HardState(), snapshot: .empty, machine: StateMachine(configuration: configuration), entries: [])
        }
    }

    /// A command this leader proposed, until its entry is applied.
    private struct Proposal: Sendable {
        var index: LogIndex
        var term: Term
        var route: RouteID?
        var timed: TimedInput
    }

    package let configuration: Configuration
    package private(set) var raft: Raft
    package private(set) var machine: StateMachine
    private var clock: ClusterClock
    /// UTC as this host reads it, for schedule slots (see `CalendarClock`).
    private var calendar: CalendarClock
    /// The lowest peer protocol version agreed with the other members (`NodeEvent.peerProtocol`).
    private var peersLowest: UInt16 = 0
    /// The wall clock at monotonic reading `originAt`: a new cluster's first leader starts its time here.
    private let origin: (wall: Timestamp, at: UInt64)
    package private(set) var appliedIndex: LogIndex
    /// In log order: a leader proposes at growing indexes and applies in the same order.
    private var proposals = Deque<Proposal>()
    /// Encodes proposals, reused so a proposal costs one allocation (its entry's bytes).
    private var scratch = ByteBuffer()
    /// Who waits for the answer to a command that waits (an acquire or a claim in line).
    private var waits: [WaitKey: WaitRoutes] = [:]
    private var reads = ReadQueue()
    private var pendingTick = PendingTick()
    /// The role the clock and the routes were last told of.
    private var leading = false
    /// Snapshots from the leader on their way to the disk: the state is restored from each once it is durable.
    private var snapshotsPersisting: [(id: PersistID, snapshot: Snapshot)] = []
    /// Open connections per client: a client with none has its waits withdrawn.
    private var connections: [ClientID: Int] = [:]
    /// Clients that sent a command that may wait (an acquire or a claim with a wait) since they
    /// connected here: only their going away is worth a log entry. A client that only said HELLO,
    /// or whose commands were refused before the log, costs the log nothing when it leaves.
    private var mayHaveWaits: Set<ClientID> = []
    /// When a new leader withdraws the waits of clients that did not reconnect, and in which term.
    private var absentCheck: (at: UInt64, term: Term)?
    /// The timer last set, as a monotonic reading.
    private var timerAt: UInt64?
    private var snapshotIndex: LogIndex
    private var snapshotInProgress = false
    /// The term in which this node last proposed the admin token.
    private var bootstrapProposed: Term?
    private var bytesSinceSnapshot = 0

    /// A node starting from `recovered` at monotonic reading `mono`, when the wall clock read `wall`.
    /// A cluster of one elects itself at once.
    package init(configuration: Configuration, recovered: Recovered, seed: UInt64, wall: Timestamp, at mono: UInt64) {
        self.configuration = configuration
        self.raft = Raft(
            id: configuration.me, configuration: configuration.raft, hardState: recovered.hardState,
            snapshot: recovered.snapshot, entries: recovered.entries, seed: seed)
        self.machine = recovered.machine
        self.clock = ClusterClock(stateTime: recovered.machine.now, at: mono, faults: configuration.faults)
        self.origin = (wall, mono)
        self.calendar = CalendarClock(wall: wall, at: mono)
        self.peersLowest = configuration.peerProtocol
        self.appliedIndex = recovered.snapshot.index
        self.snapshotIndex = recovered.snapshot.index
    }

    // MARK: Reading the node

    package var isLeader: Bool { raft.isLeader && clock.isLeading }

    /// The cluster's time: on the leader, what it stamps next; on a follower, an estimate.
    package func now(at mono: UInt64) -> Timestamp { clock.now(at: mono) }

    /// Whether this node is configured with an admin token that its state has not applied yet: until
    /// then authentication is not on, and the node takes no command and no read (issue 33: a client
    /// looping USER_ADD + TOKEN_ADD + USER_GRANT on a fresh node made itself root in that window).
    package var awaitsAuthentication: Bool {
        configuration.authBootstrap != nil && !machine.auth.enabled
    }

    /// The answer for a request that reached a node still turning authentication on: retriable, as
    /// NOT_LEADER with no leader named (the node has not taken office for clients yet).
    package var startingUp: Reply {
        .error(
            ErrorReply(
                .notLeader, "node \(configuration.nodeID) is starting: authentication is not on yet (its admin token is not applied); retry",
                leader: ""))
    }

    /// The answer for a request that reached a member which does not lead.
    package var notLeader: Reply {
        let leader = configuration.clientAddresses[raft.leader]
        let hint = leader.map { "; leader=\($0)" } ?? "; no leader is known yet"
        return .error(ErrorReply(.notLeader, "node \(configuration.nodeID) is not the leader\(hint)", leader: leader ?? ""))
    }

    // MARK: Stepping

    /// Takes one event at monotonic reading `mono` (milliseconds) and appends what to do to `actions`.
    package mutating func step(_ event: NodeEvent, at mono: UInt64, into actions: inout [NodeAction]) {
        switch event {
        case .command(let route, let client, let sequence, let command, let principal):
            guard !awaitsAuthentication else {
                if let route { actions.append(.answer(route, startingUp)) }
                return
            }
            if case .putSchedule(let spec) = command, !spec.cron.isEmpty {
                // Only the leader reads cron (members apply its fires), so only it checks one.
                do { _ = try CronSchedule(parsing: spec.cron) } catch {
                    if let route { actions.append(.answer(route, .error(error))) }
                    return
                }
            }
            if isLeader, let refusal = Self.batchRefusal(command, members: configuration.raft.members.count, peersLowest: peersLowest) {
                if let route { actions.append(.answer(route, .error(refusal))) }
                return
            }
            if command.mayWait { mayHaveWaits.insert(client) }
            propose(.command(client, sequence, command, by: principal), route: route, at: mono, into: &actions)
        case .read(let route, let query, let principal):
            guard isLeader else {
                actions.append(.answer(route, notLeader))
                return
            }
            guard !awaitsAuthentication else {
                actions.append(.answer(route, startingUp))
                return
            }
            // After every command that arrived before it (PROTOCOL.md §1), not only after the commit index.
            let after = configuration.faults.readsIgnoreEarlierCommands ? .zero : raft.lastIndex
            reads.add(query, route: route, by: principal, after: after)
        case .clientConnected(let client):
            connections[client, default: 0] += 1
        case .clientDisconnected(let client):
            guard let n = connections[client] else { return }
            if n > 1 {
                connections[client] = n - 1
            } else {
                connections[client] = nil
                // A wait may also come from the log (sent to an earlier leader): asked only then.
                if mayHaveWaits.remove(client) != nil || machine.hasWaits(of: client) {
                    propose(.detach(client), route: nil, at: mono, into: &actions)
                }
            }
        case .withdrawn(let client, let sequence):
            propose(.withdraw(client, sequence), route: nil, at: mono, into: &actions)
        case .message(let envelope):
            raft.step(envelope)
            roleMayHaveChanged(at: mono, into: &actions)
        case .tick(let wall):
            calendar.read(wall: wall, at: mono)
            stampHeartbeats(at: mono)
            raft.tick()
            roleMayHaveChanged(at: mono, into: &actions)
            maybeBootstrapAuth(at: mono, into: &actions)
        case .peerProtocol(let lowest):
            peersLowest = lowest
        case .timer:
            timerAt = nil
            timerFired(at: mono, into: &actions)
        case .persisted(let id):
            persisted(id, at: mono, into: &actions)
        case .snapshotSaved(let snapshot):
            snapshotInProgress = false
            snapshotIndex = max(snapshotIndex, snapshot.index)
            if snapshot.index > raft.snapshotIndex { raft.compact(to: snapshot) }
        case .snapshotFailed:
            snapshotInProgress = false
        case .endOfTurn:
            endOfTurn(at: mono, into: &actions)
        }
        armTimer(at: mono, into: &actions)
    }

    /// `step` for tests and the simulator: the actions of one event.
    package mutating func step(_ event: NodeEvent, at mono: UInt64) -> [NodeAction] {
        var actions: [NodeAction] = []
        step(event, at: mono, into: &actions)
        return actions
    }

    // MARK: Proposals

    /// Stamps `input` with the cluster's time and appends it to the log; a node that does not lead
    /// answers NOT_LEADER.
    private mutating func propose(_ input: StateMachineInput, route: RouteID?, at mono: UInt64, into actions: inout [NodeAction]) {
        guard isLeader else {
            if let route { actions.append(.answer(route, notLeader)) }
            return
        }
        let timed = TimedInput(input, at: clock.stamp(at: mono))
        guard let index = raft.propose(timed.encode(using: &scratch)) else {
            if let route { actions.append(.answer(route, notLeader)) }
            return
        }
        proposals.append(Proposal(index: index, term: raft.term, route: route, timed: timed))
    }

    // MARK: The Ready

    /// Hands out what Raft has ready: messages that may go now, committed entries to apply, settled
    /// reads, then the durable part.
    private mutating func endOfTurn(at mono: UInt64, into actions: inout [NodeAction]) {
        roleMayHaveChanged(at: mono, into: &actions)
        if reads.needsIndex {
            reads.indexRequested()
            stampHeartbeats(at: mono)
            raft.readIndex(reads.newest)
        }
        let ready = raft.ready()
        guard !ready.isEmpty else { return }
        // Raft holds back what must wait for the disk: these may go at once.
        if !ready.messages.isEmpty { actions.append(.send(ready.messages)) }
        // Durable here already (see `RaftReady.committed`): a leader answers its clients without
        // waiting for the sync of the entries proposed since.
        for entry in ready.committed { applyCommitted(entry, at: mono, into: &actions) }
        for read in ready.readsReady { reads.confirm(read.id, at: read.index) }
        if let upTo = ready.readsFailed.max() {
            for read in reads.take(upTo: upTo) { actions.append(.answer(read.route, notLeader)) }
        }
        answerReads(into: &actions)
        maybeSnapshot(into: &actions)
        guard let id = ready.persist else { return }
        if let snapshot = ready.snapshot { snapshotsPersisting.append((id, snapshot)) }
        for entry in ready.entries { bytesSinceSnapshot += entry.data.count }
        actions.append(.persist(id, snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState, sync: ready.mustSync))
    }

    /// Storage made a Ready's durable part durable: Raft learns it (and lets out the messages that
    /// waited for it with the next Ready), and a snapshot from the leader becomes the state.
    private mutating func persisted(_ id: PersistID, at mono: UInt64, into actions: inout [NodeAction]) {
        raft.persisted(id)
        if let first = snapshotsPersisting.first, first.id == id {
            snapshotsPersisting.removeFirst()
            restore(first.snapshot, at: mono, into: &actions)
        }
    }

    /// A committed entry of the log, in order.
    private mutating func applyCommitted(_ entry: LogEntry, at mono: UInt64, into actions: inout [NodeAction]) {
        guard entry.index > appliedIndex else { return }  // covered by a snapshot installed meanwhile
        var route: RouteID?
        var proposed: TimedInput?
        // Proposals below this entry were covered by something else (a snapshot): nobody applies them here.
        while let first = proposals.first, first.index < entry.index {
            proposals.removeFirst()
            if let lost = first.route { actions.append(.answer(lost, notLeader)) }
        }
        if let first = proposals.first, first.index == entry.index {
            let proposal = proposals.removeFirst()
            if proposal.term == entry.term {
                (route, proposed) = (proposal.route, proposal.timed)  // this entry: no need to decode it
            } else if let lost = proposal.route {
                actions.append(.answer(lost, notLeader))  // another leader's entry took its place: retry
            }
        }
        appliedIndex = entry.index
        // A new leader's empty entry carries nothing to apply.
        guard !entry.data.isEmpty, let timed = proposed ?? (try? TimedInput.decode(entry.data)) else { return }
        clock.applied(timed.time, at: mono)
        apply(timed, route: route, at: mono, into: &actions)
    }

    private mutating func apply(_ timed: TimedInput, route: RouteID?, at mono: UInt64, into actions: inout [NodeAction]) {
        let applied = machine.apply(timed.input, at: timed.time)
        switch timed.input {
        case .tick:
            pendingTick.applied()
        case .withdraw(let client, let sequence):
            waits[WaitKey(clientID: client, sequence: sequence)] = nil
        case .detach(let client):
            if !waits.isEmpty { waits = waits.filter { $0.key.clientID != client } }
        case .bootstrapAuth, .fireSchedules:
            break
        case .command(let client, let sequence, _, _):
            if let route {
                if let reply = applied.reply {
                    answer(route, reply, at: mono, into: &actions)
                } else {
                    // The first request, or a retry of a command that still waits: both are answered.
                    let key = WaitKey(clientID: client, sequence: sequence)
                    if let index = waits.index(forKey: key) {
                        waits.values[index].add(route)
                    } else {
                        waits[key] = WaitRoutes(route)
                    }
                }
            }
        }
        if !applied.schedules.isEmpty && isLeader {
            actions.append(.schedulesSettled(applied.schedules, at: slotTime(at: mono)))
        }
        for completion in applied.completions {
            guard let routes = waits.removeValue(forKey: WaitKey(clientID: completion.clientID, sequence: completion.sequence))
            else { continue }
            routes.forEach { answer($0, completion.reply, at: mono, into: &actions) }
        }
    }

    /// An answer says how long a lease it grants has left when it is sent (the answer may be a
    /// retry's, remembered since; PROTOCOL.md, "Lease time").
    private func answer(_ route: RouteID, _ reply: Reply, at mono: UInt64, into actions: inout [NodeAction]) {
        actions.append(.answer(route, reply.sent(at: clock.now(at: mono))))
    }

    /// Answers reads from the applied state, as of that state's own time: everything it shows was on
    /// disk before it was applied, and a lease shows until its end is applied (by the tick the leader
    /// proposes when it falls due). Not at this node's clock: a new leader's clock may stand behind the
    /// last reading of the one before it, and a read filtered by it could show a lease the previous
    /// leader had already shown ended (the fault suite found this, seed 377112).
    private mutating func answerReads(into actions: inout [NodeAction]) {
        for read in reads.answerable(applied: appliedIndex) {
            actions.append(.answer(read.route, machine.query(read.query, by: read.principal)))
        }
    }

    /// Replaces the state with the leader's snapshot (this member fell too far behind).
    private mutating func restore(_ snapshot: Snapshot, at mono: UInt64, into actions: inout [NodeAction]) {
        do {
            machine = try StateMachine(restoring: ByteBuffer(bytes: snapshot.data), configuration: configuration.stateMachine)
        } catch {
            actions.append(.halt("the leader's snapshot at \(snapshot.index) does not decode: \(error)"))
            return
        }
        appliedIndex = snapshot.index
        snapshotIndex = snapshot.index
        clock.applied(machine.now, at: mono)
        actions.append(.installedSnapshot(snapshot.index))
    }

    /// Asks for a snapshot once enough entries have been applied, or enough bytes logged, since the last.
    private mutating func maybeSnapshot(into actions: inout [NodeAction]) {
        guard !snapshotInProgress, appliedIndex > snapshotIndex, let term = raft.term(at: appliedIndex) else { return }
        let entries = appliedIndex.rawValue - snapshotIndex.rawValue
        guard entries >= UInt64(configuration.snapshotEveryEntries) || bytesSinceSnapshot >= configuration.snapshotEveryBytes
        else { return }
        snapshotInProgress = true
        bytesSinceSnapshot = 0
        actions.append(.saveSnapshot(machine, index: appliedIndex, term: term))
    }

    // MARK: Roles

    /// A leader's heartbeats carry its time (a reading a moment old: never ahead of its clock).
    private mutating func stampHeartbeats(at mono: UInt64) {
        if raft.isLeader && clock.isLeading { raft.heartbeatContext = clock.now(at: mono).milliseconds }
    }

    /// Follows Raft's role into the clock and the routes, and notes the time the leader's newest
    /// heartbeat told. Called after everything that may change them (a message, a tick).
    private mutating func roleMayHaveChanged(at mono: UInt64, into actions: inout [NodeAction]) {
        if raft.leaderContext != 0 {
            clock.heard(Timestamp(milliseconds: raft.leaderContext), term: raft.leaderContextTerm, at: mono)
        }
        guard raft.isLeader != leading else { return }
        leading = raft.isLeader
        if leading {
            // Continue the cluster's clock from the newest time on the committed history's timeline;
            // the leaderless gap is not counted.
            let (newest, lastTerm) = logTail()
            let wall = Timestamp(milliseconds: origin.wall.milliseconds &+ (mono &- origin.at))
            clock.lead(term: raft.term, logNewest: newest, logLastTerm: lastTerm, origin: wall, at: mono)
            stampHeartbeats(at: mono)
            absentCheck = (mono &+ configuration.absentClientGraceMilliseconds, raft.term)
            // Fire entries an earlier term took from the queue may never have been applied.
            machine.rebuildScheduleQueue()
            calendar.raise(to: machine.latestFiredSlot())
            actions.append(.leading(term: raft.term, lastIndex: raft.lastIndex, time: clock.now(at: mono)))
        } else {
            clock.follow(at: mono)
            absentCheck = nil
            actions.append(.following(term: raft.term, leader: raft.leader))
            // Everyone waiting here is told to go to the new leader (their commands may still
            // commit; a retry with the same sequence number learns the outcome).
            // In a fixed order (a dictionary's own differs from process to process), so a seed of
            // the simulator replays alike in every run.
            for proposal in proposals { if let route = proposal.route { actions.append(.answer(route, notLeader)) } }
            for key in waits.keys.sorted(by: { ($0.clientID.rawValue, $0.sequence.rawValue) < ($1.clientID.rawValue, $1.sequence.rawValue) }) {
                waits[key]?.forEach { actions.append(.answer($0, notLeader)) }
            }
            for read in reads.takeAll() { actions.append(.answer(read.route, notLeader)) }
            proposals.removeAll()
            waits.removeAll()
        }
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

    // MARK: Time

    /// The timer fired: the leader lets time pass in the state machine, through the log, when a
    /// lease, a wait or a retention has ended; and a new leader withdraws the waits of absent clients.
    private mutating func timerFired(at mono: UInt64, into actions: inout [NodeAction]) {
        guard isLeader else { return }  // followers apply the leader's ticks
        if !pendingTick.isPending(in: raft.term), machine.hasDueWork(at: clock.now(at: mono)) {
            pendingTick.proposed(in: raft.term)
            propose(.tick, route: nil, at: mono, into: &actions)
        }
        proposeDueSchedules(at: mono, into: &actions)
        if let check = absentCheck, check.at <= mono {
            absentCheck = nil
            guard check.term == raft.term else { return }
            // A new leader's log holds the waits of clients connected to the old leader. The client
            // library sends a wait again when its connection breaks, so its clients connect here
            // within seconds; the waits of clients that do not (they died too) are withdrawn, as if
            // their last connection had closed here, so no lock or job is granted to nobody.
            let absent = machine.waitingClients.filter { connections[$0] == nil }
            for client in absent.sorted(by: { $0.rawValue < $1.rawValue }) {
                propose(.detach(client), route: nil, at: mono, into: &actions)
            }
            if !absent.isEmpty { actions.append(.withdrewAbsentClients(absent.count)) }
        }
    }

    /// Proposes the fire entries of the schedules due by now: one entry of at most `maxFiresPerEntry`
    /// fires per turn of the loop. When more are due (10,000 schedules on one slot), the timer is
    /// set again at once (`armTimer` finds them due), so heartbeats and answers go out between the
    /// entries: one turn planning every schedule held the loop long enough for a follower to start
    /// an election (`baton-bench schedules`). The schedules come back into the state machine's
    /// queue as their entries are applied.
    private mutating func proposeDueSchedules(at mono: UInt64, into actions: inout [NodeAction]) {
        let now = slotTime(at: mono)
        // A put or resume is stamped on the cluster's clock: its slots start from the same moment
        // on the calendar (zero when slots are judged on the cluster's clock).
        let shift = now.milliseconds &- min(now.milliseconds, clock.now(at: mono).milliseconds)
        var batch: [ScheduleFire] = []
        while batch.count < Self.maxFiresPerEntry {
            let due = machine.takeDueSchedules(at: now, limit: min(256, Self.maxFiresPerEntry - batch.count))
            if due.isEmpty { break }
            for schedule in due { batch += SchedulePlanner.fires(for: schedule, at: now, planFromShift: shift) }
        }
        if !batch.isEmpty { propose(.fireSchedules(batch), route: nil, at: mono, into: &actions) }
    }

    /// The peer protocol version from which members apply JOB_ADD_BATCH and JOB_CLAIM_BATCH: older
    /// builds cannot read them in the log.
    package static let batchPeerProtocol: UInt16 = 8
    /// The peer protocol version from which members apply JOB_COMPLETE_BATCH.
    package static let completeBatchPeerProtocol: UInt16 = 9

    /// A leader does not log a batch command until every member reads it (a rolling upgrade):
    /// UNKNOWN_OPCODE, as from a node of an older build, so a client sends the jobs one by one. A
    /// cluster of one has no other member to wait for.
    package static func batchRefusal(_ command: Command, members: Int, peersLowest: UInt16) -> ErrorReply? {
        let needed: UInt16
        switch command {
        case .addJobs, .claimJobs: needed = batchPeerProtocol
        case .completeJobs: needed = completeBatchPeerProtocol
        default: return nil
        }
        guard members > 1, peersLowest < needed else { return nil }
        return ErrorReply(
            .unknownOpcode,
            "\(command.opcode) is not used until every member speaks peer protocol \(needed) (an upgrade is under way); send the jobs one by one")
    }

    /// The peer protocol version from which members judge slots on the calendar clock.
    package static let calendarPeerProtocol: UInt16 = 7

    /// The time schedule slots are judged by: the calendar clock once every member speaks
    /// `calendarPeerProtocol` (a cluster of one always), else the cluster's clock, as members of
    /// older builds judge them (issue 36: by that clock, an outage moved every later slot for good).
    private mutating func slotTime(at mono: UInt64) -> Timestamp {
        let calendarSlots = configuration.raft.members.count == 1 || peersLowest >= Self.calendarPeerProtocol
        return calendarSlots ? calendar.now(at: mono) : clock.now(at: mono)
    }

    /// Most fires in one log entry (about 40 bytes each, with a short name).
    static let maxFiresPerEntry = 1024

    /// On the leader, once per term: proposes the configured admin token when the state does not hold it.
    private mutating func maybeBootstrapAuth(at mono: UInt64, into actions: inout [NodeAction]) {
        guard isLeader, let hash = configuration.authBootstrap, !machine.auth.isBootstrapped(with: hash),
            bootstrapProposed != raft.term
        else { return }
        bootstrapProposed = raft.term
        propose(.bootstrapAuth(hash), route: nil, at: mono, into: &actions)
    }

    /// Keeps one timer set, on the leader, for the state machine's next deadline and the absent-client
    /// check. A timer that fires early finds nothing due and is set again.
    private mutating func armTimer(at mono: UInt64, into actions: inout [NodeAction]) {
        guard isLeader else { return }
        var want = absentCheck?.at
        if let next = machine.nextDeadline {
            want = min(want ?? .max, mono &+ UInt64(max(1, clock.now(at: mono).distance(to: next))))
        }
        if let next = machine.nextScheduleTime() {
            want = min(want ?? .max, mono &+ UInt64(max(1, slotTime(at: mono).distance(to: next))))
        }
        guard let want, timerAt.map({ $0 > want }) ?? true else { return }
        timerAt = want
        actions.append(.setTimer(atMonotonic: want))
    }
}
