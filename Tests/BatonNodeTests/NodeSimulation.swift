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
}
