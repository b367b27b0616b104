import BatonClientCore
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
/// The clients run the client library's own rules (`BatonClientCore`: `Session`, `Attempts`,
/// `LeaseClock`), one command at a time; the simulator only moves their packets and their
/// connections. A holder works under a lease until its `LeaseClock.stopAt`, and only after a late
/// grant was confirmed.
///
/// Time advances in steps of one real millisecond; every random choice comes from the seed, so a
/// seed replays exactly. After every step the invariants are checked in real time:
/// - no holder starts or goes on working under a lock or job claim while another holder works under
///   it, each counting its lease by the library's rule (until `stopAt`);
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
        /// Old bugs put back in the clients' core (negative controls).
        var clientFaults = ClientFaults.none
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
        /// How often the host was started: a connection to an earlier start is gone.
        var incarnation = 0
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

    /// What a trace entry records (`trace(_:_:)`).
    enum TraceKind: UInt64 {
        case isolated = 1, cutOneWay, healed, crashed, restarted, delivered, applied, snapshotTaken, paused
    }

    /// The faults `injectFaults` draws, with their odds out of eight.
    enum FaultKind {
        case crash, pause, isolate, cutOneWay, heal

        /// The fault for a draw: crashes and pauses 2 in 8 each, isolation and a one-way cut 1 in 8
        /// each (with more than one host), healing the rest.
        init(draw: UInt64, hosts: Int) {
            switch draw % 8 {
            case 0, 1: self = .crash
            case 2, 3: self = .pause
            case 4 where hosts > 1: self = .isolate
            case 5 where hosts > 1: self = .cutOneWay
            default: self = .heal
            }
        }
    }

    struct InFlight {
        var due: Int
        var order: Int
        var packet: Packet
    }

    /// A lease a client holds, counted by the library's `LeaseClock`.
    struct Holding {
        var token: FencingToken
        var clock: LeaseClock<ManualInstant>
        /// When its holder began to work under it; nil while a late grant awaits its confirming
        /// renewal (`LeaseClock.needsConfirming`).
        var since: Int?

        /// Whether its holder works under it at `now`.
        func works(at now: Int) -> Bool { since != nil && clock.holds(at: ManualInstant(now)) }
    }

    struct Attempt {
        var serial: Int
        var sentAt: Int
    }

    struct Outstanding {
        var sequence: SequenceNumber
        var command: Command?
        var query: Query?
        /// Every attempt sent; only the last one's answer is awaited (an earlier one's connection
        /// was left, or its request id forgotten when it timed out).
        var attempts: [Attempt] = []
        var plan: Attempts<ManualInstant>
        /// When to send the next attempt (after a backoff); nil while one is awaited.
        var retryAt: Int?
        /// When the awaited attempt times out.
        var timeoutAt = 0
    }

    /// A client's connection: to a host, in one of its starts.
    struct ClientConnection: Equatable {
        var host: Int
        var incarnation: Int
    }

    struct Client {
        var session: Session
        var connection: ClientConnection?
        var outstanding: Outstanding?
        var nextActionAt = 0
        var locks: [String: Holding] = [:]
        var claims: [JobID: Holding] = [:]
        var id: ClientID { session.clientID }
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
    var pipelined: PipelinedSession
    /// After the run: no new commands while the cluster settles.
    var clientsStopped = false
    /// Entries host `i` applied since the last look: the same everywhere, and the cluster's time
    /// they carry checked against real time.
    var seenApplied: [Int: LogIndex] = [:]
    /// Slots fired and counted missed, for the totals of a schedule run.
    var scheduleFires = 0
    var scheduleMisses = 0

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
        let addresses = (1...options.nodes).map { "host\($0)" }
        pipelined = PipelinedSession(session: Session(clientID: ClientID(900), endpoints: addresses))
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
        // Each client's endpoints start at a different host, as configured clients are spread.
        for c in 0..<options.clients {
            let endpoints = addresses.indices.map { addresses[($0 + c) % addresses.count] }
            clients.append(Client(session: Session(clientID: ClientID(UInt64(1000 + c)), endpoints: endpoints)))
        }
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

    /// The host a client address (`host<n>`) names.
    func host(at address: String) -> Int? {
        guard address.hasPrefix("host"), let n = Int(address.dropFirst(4)), (1...hosts.count).contains(n) else { return nil }
        return n - 1
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
}
