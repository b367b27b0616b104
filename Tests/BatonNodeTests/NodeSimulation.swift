import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// A deterministic simulation of a Baton cluster that runs the production `Node` on simulated hosts.
///
/// Each host carries out its node's actions as `NodeRuntime` does, on simulated parts: a disk that
/// loses what was not synced when the host crashes, a network that drops, delays, duplicates and
/// reorders peer messages and can be cut (one way or both), a monotonic clock of its own (an offset
/// from real time), and pauses (a host does nothing while its clock runs on, as under SIGSTOP).
/// Clients are simulated as the client library behaves: one command at a time, sent again with the
/// same sequence number after NOT_LEADER or silence, and every lease counted from the time the
/// request that got it was sent.
///
/// Time advances in steps of one real millisecond; every random choice comes from the seed, so a
/// seed replays exactly. After every step the invariants are checked in real time:
/// - no lock or job claim is granted while another holder's lease, as that holder counts it, runs;
///   a read that shows no holder was not answered while a lease granted before it was asked runs;
/// - the cluster's time never gains on real time, runs at real time under one leader, and a failover
///   adds to it at most the leaderless gap (from the last committed stamp to the new leader's office),
///   never a fresh TTL;
/// - every answer to one command (first try, retries, remembered answers) is the same: a command
///   takes effect once; every acknowledged job is on every replica at the end;
/// - Raft's own: one leader per term, leader completeness, state-machine safety.
struct NodeSimulation {
    struct Options {
        var nodes = 3
        var milliseconds = 3_000
        /// After this, faults stop and every host comes back, so the run ends with a working cluster.
        var healAfter = 2_200
        var clients = 4
        /// Old bugs put back in the node (negative controls).
        var faults = InjectedFaults()
        /// The client library's old bug put back: a lease counted from when its answer arrived.
        var clientCountsFromArrival = false
        /// A schedule the run puts as soon as there is a leader, and checks at the end: every
        /// slot fired once or counted missed, none twice, none early or outside its window.
        var schedule: ScheduleSpec?
        /// A pipelining session beside the clients: this many pairs of a command and a query of its
        /// key in flight at once, each pair sent in one write (see `NodeSimulation+Pipelined.swift`).
        var pipelinedDepth = 0
        /// The peer protocol every member agreed: below `Node.calendarPeerProtocol` the leader judges
        /// slots on the cluster's clock, as before issue 36 (the negative control).
        var peerProtocol = Node.calendarPeerProtocol
        /// Each host's wall clock off by up to this many milliseconds either way, and stepped by up to
        /// as much once during the run (NTP); zero: every host reads real time.
        var wallClockError = 0
        /// Every host crashes at this time (real milliseconds) for `outageLength`: the whole cluster
        /// is down for longer than a schedule's window.
        var outageAt: Int?
        var outageLength = 0
    }

    /// What a host holds on its disk: only this survives a crash.
    struct Disk {
        var hardState = HardState()
        /// A hard state written without a sync (its commit index alone moved): a crash may lose it.
        var written: HardState?
        var snapshot = Snapshot.empty
        var entries: [LogEntry] = []
    }

    struct Persist {
        var due: Int
        var id: PersistID
        var snapshot: Snapshot?
        var entries: [LogEntry]
        var hardState: HardState?
        var sync: Bool
    }

    struct Host {
        var node: Node
        var disk = Disk()
        var unsynced: [Persist] = []
        var snapshotting: (due: Int, snapshot: Snapshot)?
        var up = true
        var pausedUntil = 0
        var restartAt = 0
        /// This host's monotonic clock reads `now + offset`.
        var offset: UInt64
        var timerAt: UInt64?
        var nextTick = 0
        /// Clients that said HELLO to this process.
        var connected: Set<ClientID> = []
        var stepped = false
        /// This host's wall clock reads real time plus this (milliseconds; see `Options.wallClockError`).
        var wallOffset = 0
        /// When the host's wall clock is stepped, and by how much.
        var wallStep: (at: Int, by: Int)?
    }

    enum Packet {
        case peer(RaftEnvelope)
        case request(client: Int, host: Int, NodeEvent)
        case answer(client: Int, attempt: Int, Reply)
        /// A request of the pipelining session, and an answer to it.
        case pipelined(host: Int, NodeEvent)
        case pipelinedAnswer(PipelinedRoute, Reply)
    }

    struct InFlight {
        var due: Int
        var order: Int
        var packet: Packet
    }

    /// A lease as its holder counts it: from `since` (when the holder learned of it) to `end`.
    struct Belief {
        var token: FencingToken
        var since: Int
        var end: Int
    }

    struct Attempt {
        var serial: Int
        var sentAt: Int
        var host: Int
    }

    struct Outstanding {
        var sequence: SequenceNumber
        var command: Command?
        var query: Query?
        var attempts: [Attempt] = []
        var retryAt: Int
    }

    struct Client {
        var id: ClientID
        var sequence: UInt64 = 0
        var outstanding: Outstanding?
        var nextActionAt = 0
        var locks: [String: Belief] = [:]
        var claims: [JobID: Belief] = [:]
        var guess = 0
    }

    let seed: UInt64
    let options: Options
    let debugTrace = ProcessInfo.processInfo.environment["BATON_TRACE"] != nil
    var rng: SplitMix64
    var hosts: [Host] = []
    var network: [InFlight] = []
    var order = 0
    var now = 0
    var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    var clients: [Client] = []
    var failures: [String] = []
    var routes: [RouteID: (client: Int, attempt: Int)] = [:]
    var nextRoute: UInt64 = 0
    var nextAttempt = 0
    var pipelined = PipelinedSession()

    // Fault parameters, drawn from the seed.
    var dropPerMille: Int
    var duplicatePerMille: Int
    var maxDelay: Int
    /// Directed links between hosts that deliver nothing: (from, to).
    var cut: Set<[Int]> = []

    // What the invariants compare against.
    var leaders: [Term: NodeIndex] = [:]
    var tookOffice: [Term: Int] = [:]
    /// Every entry applied anywhere: index → (term, data, and the term of the host that applied it
    /// first). That host's term is at least the term of the leader that committed the entry, since
    /// the host learned of the commit from that leader or a later one.
    var appliedEntries: [LogIndex: (term: Term, data: [UInt8], committedBy: Term)] = [:]
    /// When each leader first handed each entry of its own to its disk (real time): its proposal.
    var proposedAt: [LogIndex: [Term: Int]] = [:]
    /// The newest committed stamp so far: (proposal's real time, stamp, term).
    var lastCommittedStamp: (proposed: Int, stamp: UInt64, term: Term)?
    /// The first answer sent for each (client, sequence), its lease counts set aside.
    var answers: [WaitKey: Reply] = [:]
    var acknowledgedJobs: Set<JobID> = []
    var acknowledgedCommands = 0
    var grants = 0
    var elections = 0
    var pauses = 0
    var crashes = 0

    init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        dropPerMille = Int(rng.next() % 100)
        duplicatePerMille = Int(rng.next() % 30)
        maxDelay = 1 + Int(rng.next() % 8)
        for i in 0..<options.nodes {
            let offset = 5_000 + rng.next() % 1_000_000
            hosts.append(Host(node: makeNode(i, disk: Disk(), at: offset), offset: offset, nextTick: Int(rng.next() % 10)))
        }
        if options.wallClockError > 0 {
            let e = options.wallClockError
            for i in hosts.indices {
                hosts[i].wallOffset = Int(rng.next() % UInt64(2 * e + 1)) - e
                hosts[i].wallStep = (Int(rng.next() % UInt64(options.milliseconds)), Int(rng.next() % UInt64(2 * e + 1)) - e)
                hosts[i].node = makeNode(i, disk: Disk(), at: hosts[i].offset)
            }
        }
        for c in 0..<options.clients { clients.append(Client(id: ClientID(UInt64(1000 + c)), guess: c % options.nodes)) }
    }

    func configuration(_ i: Int) -> Node.Configuration {
        let members = (1...options.nodes).map { NodeIndex(UInt64($0)) }
        var raft = RaftConfiguration(members: members)
        raft.electionTicks = 10
        raft.heartbeatTicks = 2
        raft.maxEntriesPerAppend = 16
        raft.maxInflightAppends = 8
        var configuration = Node.Configuration(
            nodeID: "n\(i + 1)", raft: raft, me: members[i],
            clientAddresses: Dictionary(uniqueKeysWithValues: members.map { ($0, "host\($0)") }),
            stateMachine: Self.stateMachineConfiguration, absentClientGraceMilliseconds: 600, snapshotEveryEntries: 40, snapshotEveryBytes: 1 << 30)
        configuration.faults = options.faults
        configuration.peerProtocol = options.peerProtocol
        return configuration
    }

    /// Schedules as short as a simulated run needs.
    static let stateMachineConfiguration: StateMachine.Configuration = {
        var c = StateMachine.Configuration()
        c.minScheduleInterval = 10
        return c
    }()

    mutating func makeNode(_ i: Int, disk: Disk, at mono: UInt64) -> Node {
        let c = Self.stateMachineConfiguration
        let machine =
            disk.snapshot.data.isEmpty
            ? StateMachine(configuration: c) : try! StateMachine(restoring: ByteBuffer(bytes: disk.snapshot.data), configuration: c)
        let recovered = Node.Recovered(hardState: disk.hardState, snapshot: disk.snapshot, machine: machine, entries: disk.entries)
        return Node(
            configuration: configuration(i), recovered: recovered, seed: rng.next(),
            wall: wall(i), at: mono)
    }

    /// The real time in the cluster's epoch: what a host with an exact wall clock reads.
    var realTime: UInt64 { Self.epoch + UInt64(now) }
    static let epoch: UInt64 = 1_700_000_000_000

    /// Host `i`'s wall clock: real time, off by its error, and by its step once that came.
    func wall(_ i: Int) -> Timestamp {
        guard i < hosts.count else { return Timestamp(milliseconds: realTime) }
        var error = hosts[i].wallOffset
        if let step = hosts[i].wallStep, now >= step.at { error += step.by }
        return Timestamp(milliseconds: UInt64(Int(realTime) + error))
    }

    func mono(_ i: Int) -> UInt64 { hosts[i].offset + UInt64(now) }

    /// Whether host `i` runs now (up and not paused).
    func runs(_ i: Int) -> Bool { hosts[i].up && hosts[i].pausedUntil <= now }

    // MARK: - Running

    mutating func run() {
        for i in hosts.indices { step(i, .endOfTurn) }
        while now < options.milliseconds && failures.isEmpty {
            tick()
            now += 1
        }
        // Settle: no new commands; give every host up to two more seconds to catch up.
        clientsStopped = true
        let limit = now + 2_000
        while now < limit && failures.isEmpty && !caughtUp {
            tick()
            now += 1
        }
        if failures.isEmpty { checkFinalState() }
    }

    var clientsStopped = false

    /// One leader, and every host has applied everything it committed.
    var caughtUp: Bool {
        guard let leader = hosts.first(where: { $0.up && $0.node.isLeader }) else { return false }
        return hosts.allSatisfy { $0.up && $0.node.appliedIndex == leader.node.raft.commit }
    }

    /// One real millisecond.
    mutating func tick() {
        if let at = options.outageAt, now == at {
            for i in hosts.indices where hosts[i].up { crash(i, downFor: options.outageLength) }
        }
        if now < options.healAfter {
            injectFaults()
        } else if now == options.healAfter {
            cut.removeAll()
            dropPerMille = 0
            for i in hosts.indices {
                hosts[i].pausedUntil = min(hosts[i].pausedUntil, now)
                if !hosts[i].up { hosts[i].restartAt = now }
            }
        }
        for i in hosts.indices where !hosts[i].up && hosts[i].restartAt <= now { restart(i) }
        deliver()
        for i in hosts.indices where runs(i) {
            while let first = hosts[i].unsynced.first, first.due <= now {
                hosts[i].unsynced.removeFirst()
                write(first, on: i)
                step(i, .persisted(first.id))
            }
            if let saving = hosts[i].snapshotting, saving.due <= now {
                hosts[i].snapshotting = nil
                // Written atomically before the entries it covers are dropped.
                hosts[i].disk.snapshot = saving.snapshot
                hosts[i].disk.entries.removeAll { $0.index <= saving.snapshot.index }
                step(i, .snapshotSaved(saving.snapshot))
            }
            if let at = hosts[i].timerAt, at <= mono(i) {
                hosts[i].timerAt = nil
                step(i, .timer)
            }
            if hosts[i].nextTick <= now {
                hosts[i].nextTick = now + 10
                step(i, .tick(wall: wall(i)))
            }
        }
        driveClients()
        if options.pipelinedDepth > 0 { drivePipelined() }
        putSchedule()
        for i in hosts.indices where runs(i) && hosts[i].stepped {
            hosts[i].stepped = false
            step(i, .endOfTurn)
        }
        checkInvariants()
    }

    // MARK: - Carrying out actions

    mutating func step(_ i: Int, _ event: NodeEvent) {
        if case .endOfTurn = event {} else { hosts[i].stepped = true }
        let actions = hosts[i].node.step(event, at: mono(i))
        for action in actions { perform(action, on: i) }
    }

    mutating func perform(_ action: NodeAction, on i: Int) {
        switch action {
        case .send(let messages):
            for message in messages { send(message) }
        case .persist(let id, let snapshot, let entries, let hardState, let sync):
            for entry in entries where entry.term == hosts[i].node.raft.term && hosts[i].node.raft.isLeader {
                if proposedAt[entry.index]?[entry.term] == nil { proposedAt[entry.index, default: [:]][entry.term] = now }
            }
            // A Ready that needs no sync is only written: done once the ones before it are.
            let due = sync ? now + Int(rng.next() % 3) : now
            hosts[i].unsynced.append(Persist(due: due, id: id, snapshot: snapshot, entries: entries, hardState: hardState, sync: sync))
        case .answer(let route, let reply):
            if let to = pipelined.routes.removeValue(forKey: route) {
                order += 1
                network.append(InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .pipelinedAnswer(to, reply)))
                return
            }
            guard let to = routes.removeValue(forKey: route) else { return }
            if debugTrace { print("\(now) host \(i + 1) answers client \(to.client) attempt \(to.attempt): \(reply)") }
            observe(reply, for: to.client, attempt: to.attempt)
            // Now and then an answer is slow to reach its client (a busy client host, a retransmission).
            let slow = rng.next() % 100 < 3 ? 50 + Int(rng.next() % 250) : 0
            let delay = 1 + Int(rng.next() % UInt64(maxDelay)) + slow
            order += 1
            network.append(InFlight(due: now + delay, order: order, packet: .answer(client: to.client, attempt: to.attempt, reply)))
        case .setTimer(let at):
            hosts[i].timerAt = at
        case .saveSnapshot(let machine, let index, let term):
            var buffer = machine.snapshot()
            let snapshot = Snapshot(index: index, term: term, data: buffer.readBytes(length: buffer.readableBytes) ?? [])
            hosts[i].snapshotting = (now + 1 + Int(rng.next() % 5), snapshot)
            trace(8, index.rawValue)
        case .leading(let term, _, _):
            tookOffice[term] = now
        case .following, .installedSnapshot, .withdrewAbsentClients, .schedulesSettled:
            break
        case .halt(let reason):
            fail("host \(i + 1) halted: \(reason)")
        }
    }

    /// Makes one persist durable on host `i`'s disk.
    mutating func write(_ persist: Persist, on i: Int) {
        if persist.sync {
            if let written = hosts[i].disk.written { hosts[i].disk.hardState = written }  // synced along
            hosts[i].disk.written = nil
            if let hs = persist.hardState { hosts[i].disk.hardState = hs }
        } else if let hs = persist.hardState {
            hosts[i].disk.written = hs
        }
        if let snapshot = persist.snapshot {
            hosts[i].disk.snapshot = snapshot
            hosts[i].disk.entries.removeAll()
        }
        for entry in persist.entries {
            if let at = hosts[i].disk.entries.firstIndex(where: { $0.index >= entry.index }) {
                hosts[i].disk.entries.removeSubrange(at...)
            }
            hosts[i].disk.entries.append(entry)
        }
    }

    // MARK: - Faults

    mutating func injectFaults() {
        guard rng.next() % 1000 < 4 else { return }  // about every 250 ms
        let n = hosts.count
        let leader = hosts.indices.first { runs($0) && hosts[$0].node.isLeader }
        switch rng.next() % 8 {
        case 0, 1:
            let victim = Int(rng.next() % UInt64(n))
            if hosts[victim].up && hosts.filter(\.up).count > 1 { crash(victim, downFor: 20 + Int(rng.next() % 400)) }
        case 2, 3:
            // A pause, often of the leader: it stops while its clock runs on, then resumes as if
            // nothing happened (it may still think it leads).
            let victim = (rng.next() % 3 != 0 ? leader : nil) ?? Int(rng.next() % UInt64(n))
            if runs(victim) {
                hosts[victim].pausedUntil = now + 50 + Int(rng.next() % 600)
                pauses += 1
                trace(9, UInt64(victim))
            }
        case 4 where n > 1:
            // Isolate one host (often the leader) both ways.
            let victim = (rng.next() % 2 == 0 ? leader : nil) ?? Int(rng.next() % UInt64(n))
            for other in 0..<n where other != victim {
                cut.insert([victim, other])
                cut.insert([other, victim])
            }
            trace(1, UInt64(victim))
        case 5 where n > 1:
            // A one-way partition.
            let a = Int(rng.next() % UInt64(n))
            let b = (a + 1 + Int(rng.next() % UInt64(n - 1))) % n
            cut.insert([a, b])
            trace(2, UInt64(a * 16 + b))
        default:
            cut.removeAll()
            trace(3, 0)
        }
    }

    mutating func crash(_ i: Int, downFor: Int) {
        hosts[i].up = false
        hosts[i].unsynced.removeAll()  // not yet synced: gone
        hosts[i].snapshotting = nil
        if let written = hosts[i].disk.written, rng.next() % 2 == 0 { hosts[i].disk.hardState = written }  // or it reached the disk anyway
        hosts[i].disk.written = nil
        hosts[i].restartAt = now + downFor
        crashes += 1
        trace(4, UInt64(i))
    }

    /// Rebuilds the host's node from its disk alone.
    mutating func restart(_ i: Int) {
        hosts[i].node = makeNode(i, disk: hosts[i].disk, at: mono(i))
        hosts[i].up = true
        hosts[i].pausedUntil = 0
        hosts[i].timerAt = nil
        hosts[i].connected = []
        hosts[i].nextTick = now + 1
        trace(5, UInt64(i))
        step(i, .endOfTurn)
    }

    // MARK: - Network

    mutating func send(_ envelope: RaftEnvelope) {
        let from = Int(envelope.from.rawValue) - 1
        let to = Int(envelope.to.rawValue) - 1
        if cut.contains([from, to]) || Int(rng.next() % 1000) < dropPerMille { return }
        let copies = Int(rng.next() % 1000) < duplicatePerMille ? 2 : 1
        for _ in 0..<copies {
            order += 1
            network.append(InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .peer(envelope)))
        }
    }

    /// Delivers what is due. A paused host's packets wait for it (its sockets keep them); a crashed
    /// host's are lost.
    mutating func deliver() {
        guard !network.isEmpty else { return }
        var due: [InFlight] = []
        var later: [InFlight] = []
        for m in network {
            if m.due <= now, !isPausedTarget(m.packet) { due.append(m) } else { later.append(m) }
        }
        guard !due.isEmpty else { return }
        network = later
        due.sort { ($0.due, $0.order) < ($1.due, $1.order) }
        for m in due {
            switch m.packet {
            case .peer(let envelope):
                let to = Int(envelope.to.rawValue) - 1
                guard hosts[to].up else { continue }
                trace(6, envelope.from.rawValue &* 31 &+ envelope.to.rawValue &* 7 &+ envelope.term.rawValue)
                step(to, .message(envelope))
            case .request(let c, let to, let event):
                guard hosts[to].up else { continue }
                if hosts[to].connected.insert(clients[c].id).inserted { step(to, .clientConnected(clients[c].id)) }
                step(to, event)
            case .answer(let c, let attempt, let reply):
                received(reply, by: c, attempt: attempt)
            case .pipelined(let to, let event):
                guard hosts[to].up else { continue }
                if hosts[to].connected.insert(pipelined.id).inserted { step(to, .clientConnected(pipelined.id)) }
                step(to, event)
            case .pipelinedAnswer(let route, let reply):
                receivedPipelined(reply, route)
            }
        }
    }

    func isPausedTarget(_ packet: Packet) -> Bool {
        switch packet {
        case .peer(let envelope):
            let to = Int(envelope.to.rawValue) - 1
            return hosts[to].up && hosts[to].pausedUntil > now
        case .request(_, let to, _), .pipelined(let to, _):
            return hosts[to].up && hosts[to].pausedUntil > now
        case .answer, .pipelinedAnswer:
            return false
        }
    }

    // MARK: - Clients

    mutating func driveClients() {
        guard !clientsStopped else { return }
        for c in clients.indices {
            if let out = clients[c].outstanding {
                // No answer (its host died or the answer is lost): send it again, same sequence number.
                if out.retryAt <= now { sendAttempt(c, to: Int(rng.next() % UInt64(hosts.count))) }
                continue
            }
            guard clients[c].nextActionAt <= now else { continue }
            startNext(c)
        }
    }

    mutating func startNext(_ c: Int) {
        let key = "lock-\(rng.next() % 2)"
        let live = clients[c].locks.filter { $0.value.end > now }.min { $0.key < $1.key }
        var command: Command?
        var query: Query?
        if let (held, belief) = live, rng.next() % 3 != 0 {
            if rng.next() % 3 == 0 {
                command = .releaseLock(key: held, token: belief.token)
                clients[c].locks[held] = nil  // the holder stops using it before it asks to release
            } else {
                command = .renewLock(key: held, token: belief.token, ttl: Milliseconds(100 + UInt32(rng.next() % 300)))
            }
        } else if let (job, belief) = clients[c].claims.filter({ $0.value.end > now }).min(by: { $0.key < $1.key }) {
            command = .completeJob(job, token: belief.token, result: [1])
            clients[c].claims[job] = nil
        } else {
            switch rng.next() % 6 {
            case 0, 1:
                let wait = rng.next() % 2 == 0 ? 0 : 50 + UInt32(rng.next() % 300)
                command = .acquireLock(
                    key: key, owner: "c\(c)", ttl: Milliseconds(50 + UInt32(rng.next() % 350)), wait: Milliseconds(wait))
            case 2:
                command = .addJob(JobSpec(type: "t", payload: [UInt8(c)], timeout: Milliseconds(100 + UInt32(rng.next() % 300))))
            case 3:
                command = .claimJob(types: ["t"], worker: "c\(c)", wait: Milliseconds(rng.next() % 2 == 0 ? 0 : 200))
            default:
                query = .getLock(key: key)
            }
        }
        if command != nil { clients[c].sequence += 1 }
        clients[c].outstanding = Outstanding(
            sequence: SequenceNumber(clients[c].sequence), command: command, query: query, retryAt: now)
        sendAttempt(c, to: clients[c].guess)
    }

    mutating func sendAttempt(_ c: Int, to host: Int) {
        guard var out = clients[c].outstanding else { return }
        nextAttempt += 1
        nextRoute += 1
        let route = RouteID(nextRoute)
        routes[route] = (c, nextAttempt)
        out.attempts.append(Attempt(serial: nextAttempt, sentAt: now, host: host))
        var wait = 0
        let event: NodeEvent
        if let command = out.command {
            if case .acquireLock(_, _, _, let w) = command { wait = Int(w.rawValue) }
            if case .claimJob(_, _, let w) = command { wait = Int(w.rawValue) }
            event = .command(route, clients[c].id, out.sequence, command)
        } else {
            event = .read(route, out.query!)
        }
        out.retryAt = now + wait + 250
        if debugTrace { print("\(now) client \(c) attempt \(nextAttempt) seq \(out.sequence) to host \(host + 1): \(event)") }
        clients[c].outstanding = out
        order += 1
        network.append(
            InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .request(client: c, host: host, event)))
    }

    /// An answer reached client `c`.
    mutating func received(_ reply: Reply, by c: Int, attempt serial: Int) {
        guard let out = clients[c].outstanding, let attempt = out.attempts.first(where: { $0.serial == serial }) else { return }
        if case .error(let e) = reply, e.code.isRetriable {
            // Try the leader it names, or the next host, soon.
            clients[c].guess = leaderHint(e.message) ?? (attempt.host + 1) % hosts.count
            clients[c].outstanding?.retryAt = now + 2
            clients[c].outstanding?.attempts.removeAll { $0.serial == serial }
            return
        }
        clients[c].outstanding = nil
        clients[c].guess = attempt.host
        clients[c].nextActionAt = now + Int(rng.next() % 10)
        acknowledgedCommands += 1
        // The client library counts a lease from when it sent the request that got it.
        let base = options.clientCountsFromArrival ? now : attempt.sentAt
        if let query = out.query {
            checkRead(query, reply, askedAt: attempt.sentAt)
            return
        }
        switch (out.command!, reply) {
        case (.acquireLock(let key, _, _, _), .lockAcquired(.granted(let token, _, let left))):
            grants += 1
            let belief = Belief(token: token, since: now, end: base + Int(left.rawValue))
            if belief.end > now { checkGrant(of: key, token: token, to: c) }  // else its holder knows it is over
            clients[c].locks[key] = belief
        case (.renewLock(let key, let token, _), .lockRenewed(_, let left)):
            if clients[c].locks[key]?.token == token { clients[c].locks[key]?.end = base + Int(left.rawValue) }
        case (.renewLock(let key, _, _), .error):
            clients[c].locks[key] = nil
        case (.addJob, .jobAdded(let id, _)):
            acknowledgedJobs.insert(id)
        case (.claimJob, .jobClaimed(let job?)):
            let belief = Belief(token: job.token, since: now, end: base + Int(job.leaseLeft.rawValue))
            if belief.end > now { checkClaim(of: job.id, token: job.token, by: c) }
            clients[c].claims[job.id] = belief
        default:
            break
        }
    }

    func leaderHint(_ message: String) -> Int? {
        guard let range = message.range(of: "leader=host") else { return nil }
        return Int(message[range.upperBound...].prefix { $0.isNumber }).map { $0 - 1 }
    }

    // MARK: - Invariants

    /// A lock granted to `c`, whose lease it counts as still running: nobody else may count a lease
    /// of it that still runs.
    mutating func checkGrant(of key: String, token: FencingToken, to c: Int) {
        for other in clients.indices where other != c {
            if let belief = clients[other].locks[key], belief.end > now, belief.token != token {
                fail("\(key) granted to client \(c) (token \(token)) while client \(other) counts token \(belief.token) until \(belief.end)")
            }
        }
    }

    mutating func checkClaim(of job: JobID, token: FencingToken, by c: Int) {
        for other in clients.indices where other != c {
            if let belief = clients[other].claims[job], belief.end > now, belief.token != token {
                fail("job \(job) claimed by client \(c) while client \(other) counts its claim until \(belief.end)")
            }
        }
    }

    /// A read that shows a lock free, or held under another token, was not answered while a lease
    /// its holder learned of before the read was asked still runs.
    mutating func checkRead(_ query: Query, _ reply: Reply, askedAt: Int) {
        guard case .getLock(let key) = query, case .lock(let info) = reply else {
            fail("a read \(query) asked at \(askedAt) was answered \(reply)")  // the clients only read locks
            return
        }
        for c in clients.indices {
            guard let belief = clients[c].locks[key], belief.since < askedAt, belief.end > now else { continue }
            if info?.token != belief.token {
                fail("a read of \(key) asked at \(askedAt) showed \(info.map { "token \($0.token)" } ?? "no holder") while client \(c) counts token \(belief.token) until \(belief.end)")
            }
        }
    }

    /// Every answer to one command is the same, however often it is sent (lease counts aside).
    mutating func observe(_ reply: Reply, for c: Int, attempt: Int) {
        guard let out = clients[c].outstanding, out.command != nil, out.attempts.contains(where: { $0.serial == attempt }) else { return }
        if case .error(let e) = reply, e.code.isRetriable { return }
        let key = WaitKey(clientID: clients[c].id, sequence: out.sequence)
        let normal = reply.sent(at: Timestamp(milliseconds: 0))
        if let first = answers[key] {
            if first != normal { fail("client \(c) sequence \(out.sequence) answered \(normal), earlier \(first)") }
        } else {
            answers[key] = normal
        }
    }

    mutating func checkInvariants() {
        for i in hosts.indices where hosts[i].up {
            let node = hosts[i].node
            if node.raft.isLeader {
                if let other = leaders[node.raft.term], other != node.raft.id {
                    fail("two leaders in term \(node.raft.term): \(other) and \(node.raft.id)")
                }
                if leaders[node.raft.term] == nil {
                    leaders[node.raft.term] = node.raft.id
                    elections += 1
                    // Leader completeness (Raft §5.4): a leader holds every entry committed in an
                    // earlier term. A leader of an older term may still take office late (its votes
                    // were slow to arrive) and lack what a newer leader committed since.
                    for (index, known) in appliedEntries where index > node.raft.snapshotIndex && known.committedBy < node.raft.term {
                        if node.raft.term(at: index) != known.term {
                            fail("leader \(node.raft.id) of term \(node.raft.term) lacks applied entry \(index)")
                        }
                    }
                }
            }
            recordApplied(on: i)
        }
    }

    /// Entries host `i` applied since the last look: the same everywhere, and the cluster's time
    /// they carry checked against real time.
    var seenApplied: [Int: LogIndex] = [:]

    mutating func recordApplied(on i: Int) {
        let node = hosts[i].node
        var index = max(seenApplied[i] ?? .zero, node.raft.snapshotIndex)
        if node.appliedIndex < index { index = node.appliedIndex }  // restarted from its disk
        while index < node.appliedIndex {
            index = index.advanced(by: 1)
            guard let entry = node.raft.entry(at: index) else { continue }
            if let known = appliedEntries[index] {
                if known.term != entry.term || known.data != entry.data {
                    fail("index \(index) applied as term \(entry.term) on host \(i + 1), as term \(known.term) elsewhere")
                }
                continue
            }
            appliedEntries[index] = (entry.term, entry.data, node.raft.term)
            trace(7, index.rawValue &* 131 &+ entry.term.rawValue)
            guard !entry.data.isEmpty, let timed = try? TimedInput.decode(entry.data),
                let proposed = proposedAt[index]?[entry.term]
            else { continue }
            checkClock(stamp: timed.time.milliseconds, proposed: proposed, term: entry.term, index: index)
        }
        seenApplied[i] = node.appliedIndex
    }

    /// The lag of the cluster's time behind real time (proposal time minus stamp) never shrinks, does
    /// not grow under one leader, and grows across a failover by no more than the leaderless gap.
    mutating func checkClock(stamp: UInt64, proposed: Int, term: Term, index: LogIndex) {
        defer { lastCommittedStamp = (proposed, stamp, term) }
        guard let last = lastCommittedStamp else { return }
        let lag = Int64(proposed) - Int64(stamp)
        let lastLag = Int64(last.proposed) - Int64(last.stamp)
        if lag < lastLag {
            fail("the cluster's time gained \(lastLag - lag) ms on real time at index \(index) (term \(term)): a lease ends early")
        } else if term == last.term, lag != lastLag {
            fail("under one leader (term \(term)) the cluster's time fell \(lag - lastLag) ms behind real time at index \(index)")
        } else if term != last.term, let office = tookOffice[term], lag - lastLag > Int64(office - last.proposed) {
            fail("a failover added \(lag - lastLag) ms to leases at index \(index), more than the leaderless gap of \(office - last.proposed) ms")
        }
    }

    /// After healing: a leader, every host caught up, every acknowledged job present everywhere.
    mutating func checkFinalState() {
        guard let leader = hosts.firstIndex(where: { $0.up && $0.node.isLeader }) else {
            fail("no leader \(options.milliseconds - options.healAfter) ms after healing")
            return
        }
        for i in hosts.indices where hosts[i].node.appliedIndex != hosts[leader].node.raft.commit {
            fail("host \(i + 1) applied \(hosts[i].node.appliedIndex), the leader committed \(hosts[leader].node.raft.commit), 2 s after the clients stopped")
            return
        }
        if let spec = options.schedule { checkSchedule(spec, on: hosts[leader].node.machine) }
        for i in hosts.indices {
            for job in acknowledgedJobs {
                guard case .job = hosts[i].node.machine.query(.getJob(job)) else {
                    fail("acknowledged job \(job) missing on host \(i + 1)")
                    return
                }
            }
        }
    }

    // MARK: - Schedules

    /// Sends the schedule's put to a leader every 50 ms until one holds it (a put is idempotent).
    mutating func putSchedule() {
        guard let spec = options.schedule, now % 50 == 0,
            let leader = hosts.indices.first(where: { runs($0) && hosts[$0].node.isLeader }),
            case .schedule(nil) = hosts[leader].node.machine.query(.getSchedule(name: spec.name))
        else { return }
        nextRoute += 1
        step(leader, .command(RouteID(nextRoute), ClientID(9_999), SequenceNumber(0), .putSchedule(spec)))
    }

    /// Every slot from the first to the last settled was fired once or counted missed, none twice,
    /// and each was judged on the calendar (issue 36): a fire was proposed no earlier than its slot's
    /// real time and at most the catch-up window after it, a miss only when the slot was older than
    /// the window, each give or take the hosts' wall-clock errors. (The cluster's clock, which the
    /// jobs' `createdAt` is on, stops while no leader serves, so it cannot tell lateness.)
    mutating func checkSchedule(_ spec: ScheduleSpec, on machine: StateMachine) {
        guard case .schedule(let found) = machine.query(.getSchedule(name: spec.name)), let info = found else {
            fail("schedule \(spec.name) missing at the end")
            return
        }
        guard case .jobs(let jobs, _) = machine.query(.listJobs(JobFilter(type: spec.job.type))) else {
            fail("listing the schedule's jobs did not answer with jobs")
            return
        }
        let every = UInt64(spec.every.rawValue)
        let window = Int(spec.catchUpWindow.rawValue)
        let error = 2 * options.wallClockError  // an offset and a step, either way
        // The committed fire entries in log order, with when (real time) their leader proposed them.
        var firstFire: [UInt64: Int] = [:]
        var firstMiss: [UInt64: (proposed: Int, count: UInt32)] = [:]
        for index in appliedEntries.keys.sorted() {
            let entry = appliedEntries[index]!
            guard let timed = try? TimedInput.decode(entry.data), case .fireSchedules(let fires) = timed.input,
                let proposed = proposedAt[index]?[entry.term]
            else { continue }
            for fire in fires where fire.name == spec.name && fire.slot != .zero {
                let slot = fire.slot.milliseconds
                if fire.missed == 0 {
                    if firstFire[slot] == nil { firstFire[slot] = proposed }
                } else if firstMiss[slot] == nil {
                    firstMiss[slot] = (proposed, fire.missed)
                }
            }
        }
        var slots = Set<UInt64>()
        for job in jobs {
            guard let slot = job.uniqueKey.split(separator: ":").last.flatMap({ UInt64($0) }) else {
                fail("job \(job.id) of the schedule has unique key \(job.uniqueKey)")
                continue
            }
            if !slots.insert(slot).inserted { fail("slot \(slot) added two jobs") }
            if slot % every != 0 { fail("slot \(slot) is not a multiple of \(every)") }
            guard let proposed = firstFire[slot] else {
                fail("slot \(slot) added a job, but no committed fire names it")
                continue
            }
            let lateness = Int(Self.epoch) + proposed - Int(slot)
            if lateness < -error { fail("slot \(slot) fired \(-lateness) ms early (real time)") }
            if lateness > window + error {
                fail("slot \(slot) fired \(lateness) ms after its time (real time), later than its window of \(window) ms")
            }
        }
        for (slot, miss) in firstMiss where miss.count > 0 {
            let lateness = Int(Self.epoch) + miss.proposed - Int(slot)
            if lateness <= window - error { fail("slot \(slot) counted missed only \(lateness) ms after its time (window \(window) ms)") }
        }
        if info.fires != UInt64(jobs.count) { fail("\(info.fires) fires counted, \(jobs.count) jobs added: a slot fired twice") }
        guard info.nextSlot != .zero, info.nextSlot != .never, let start = (Array(firstFire.keys) + Array(firstMiss.keys)).min() else {
            if info.misses == 0 && info.fires == 0 { fail("the schedule never fired: next slot \(info.nextSlot)") }
            return
        }
        let expected = (info.nextSlot.milliseconds - start) / every
        if info.fires + info.misses != expected {
            fail("\(info.fires) fires and \(info.misses) misses for the \(expected) slots from \(start) to \(info.nextSlot)")
        }
        if Int(info.nextSlot.milliseconds) + 2 * Int(every) + error < Int(realTime) {
            fail("the schedule stands still: next slot \(info.nextSlot), real time \(realTime)")
        }
        scheduleFires += Int(info.fires)
        scheduleMisses += Int(info.misses)
    }

    var scheduleFires = 0
    var scheduleMisses = 0

    mutating func fail(_ text: String) {
        failures.append("seed \(seed), \(now) ms: \(text)")
    }

    mutating func trace(_ kind: UInt64, _ value: UInt64) {
        for v in [kind, value, UInt64(now)] {
            traceHash = (traceHash ^ v) &* 0x100_0000_01b3
        }
    }
}
