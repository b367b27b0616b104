import BatonCore
import BatonProtocol
import NIOCore

@testable import BatonRaft

/// A deterministic simulation of a Baton cluster: Raft cores with Baton's state machine on top, a
/// seeded network that drops, delays, duplicates and reorders messages, partitions (including one-way
/// ones), crashes that lose whatever was not yet synced, and clocks running at different rates.
/// Time advances in steps of one millisecond; every random choice comes from the seed, so a seed
/// replays exactly and `traceHash` is identical for two runs of one seed.
struct Simulation {
    struct Options {
        var nodes = 3
        var milliseconds = 2_500
        /// After this, faults stop and the network heals, so the run ends with a working cluster.
        var healAfter = 1_800
        var clients = 3
    }

    /// What a node holds on its disk: only this survives a crash.
    struct Disk {
        var hardState = HardState()
        /// A hard state written without a sync (its commit index alone moved): a crash may lose it.
        var written: HardState?
        var snapshot = Snapshot.empty
        var entries: [LogEntry] = []

        /// Whether `entry` is on this disk (the entries are contiguous).
        func holds(_ entry: LogEntry) -> Bool {
            if entry.index <= snapshot.index { return true }
            guard let first = entries.first?.index, entry.index >= first else { return false }
            let offset = Int(entry.index.rawValue - first.rawValue)
            return offset < entries.count && entries[offset].term == entry.term
        }
    }

    struct Node {
        var raft: Raft
        var disk = Disk()
        /// Readies waiting for their sync: lost on a crash.
        var unsynced: [(due: Int, ready: RaftReady)] = []
        var machine = StateMachine()
        var applied = LogIndex.zero
        var up = true
        var restartAt = 0
        /// Milliseconds per Raft tick (clocks run at different rates).
        var tickEvery: Int
        var nextTick: Int
        /// Local clock rate in per mille, for the timestamps a leader puts on entries.
        var clockRate: Int
        var lastTickProposal = 0
        var sinceSnapshot = 0
    }

    struct Message {
        var due: Int
        var order: Int
        var envelope: RaftEnvelope
    }

    /// A client with at most one command outstanding, retried with the same sequence number after a
    /// failover until some node answers it.
    struct Client {
        var id: ClientID
        var sequence: UInt64 = 0
        var outstanding: (command: Command, node: Int, index: LogIndex, term: Term, sentAt: Int)?
        var nextActionAt = 0
        var heldLocks: [String: FencingToken] = [:]
        var claimed: [JobID: FencingToken] = [:]
    }

    let seed: UInt64
    let options: Options
    var rng: SplitMix64
    var nodes: [Node] = []
    var network: [Message] = []
    var messageOrder = 0
    var now = 0
    var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    var clients: [Client] = []
    var failures: [String] = []

    // Fault parameters, drawn from the seed.
    var dropPerMille: Int
    var duplicatePerMille: Int
    var maxDelay: Int
    /// Directed links that deliver nothing: (from, to).
    var cut: Set<[Int]> = []

    // What invariants compare against.
    var leaders: [Term: NodeIndex] = [:]
    /// Every entry applied anywhere: index → (term, data). Applied entries never change.
    var appliedEntries: [LogIndex: (term: Term, data: [UInt8])] = [:]
    /// The answer each index produced, from the first node that applied it.
    var answers: [LogIndex: [Reply]] = [:]
    var acknowledgedJobs: Set<JobID> = []
    var acknowledgedCommands = 0
    var elections = 0

    init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        dropPerMille = Int(rng.next() % 120)
        duplicatePerMille = Int(rng.next() % 50)
        maxDelay = 1 + Int(rng.next() % 12)
        let members = (1...options.nodes).map { NodeIndex(UInt64($0)) }
        var configuration = RaftConfiguration(members: members)
        configuration.electionTicks = 10
        configuration.maxEntriesPerAppend = 16
        configuration.maxInflightAppends = 8
        for member in members {
            let tickEvery = 8 + Int(rng.next() % 5)
            nodes.append(
                Node(
                    raft: Raft(id: member, configuration: configuration, seed: seed), tickEvery: tickEvery,
                    nextTick: Int(rng.next() % UInt64(tickEvery)), clockRate: 950 + Int(rng.next() % 101)))
        }
        for c in 0..<options.clients {
            clients.append(Client(id: ClientID(UInt64(1000 + c))))
        }
    }

    // MARK: - Running

    mutating func run() {
        while now < options.milliseconds && failures.isEmpty {
            step()
            now += 1
        }
        // Settle: no new commands; give every node up to two more seconds to catch up.
        clientsStopped = true
        let limit = now + 2_000
        while now < limit && failures.isEmpty && !caughtUp {
            step()
            now += 1
        }
        if failures.isEmpty { checkFinalState() }
    }

    var clientsStopped = false

    /// One leader, and every node has applied everything it committed.
    var caughtUp: Bool {
        guard let leader = nodes.first(where: { $0.up && $0.raft.isLeader }) else { return false }
        return nodes.allSatisfy { $0.up && $0.applied == leader.raft.commit }
    }

    mutating func step() {
        if now < options.healAfter {
            injectFaults()
        } else if now == options.healAfter {
            cut.removeAll()
            dropPerMille = 0
            for i in nodes.indices where !nodes[i].up { nodes[i].restartAt = now }
        }
        for i in nodes.indices where !nodes[i].up && nodes[i].restartAt <= now { restart(i) }
        deliverMessages()
        for i in nodes.indices where nodes[i].up {
            if nodes[i].nextTick <= now {
                nodes[i].raft.tick()
                nodes[i].nextTick += nodes[i].tickEvery
            }
            if nodes[i].raft.isLeader, now - nodes[i].lastTickProposal >= 20 {
                // The leader lets time pass in the state machine, so leases expire at the same log position everywhere.
                nodes[i].lastTickProposal = now
                _ = nodes[i].raft.propose(TimedInput(.tick, at: clock(i)).encode())
            }
        }
        driveClients()
        for i in nodes.indices where nodes[i].up {
            var ready = nodes[i].raft.ready()
            // Committed entries are durable here already: applied now, while this Ready syncs.
            for entry in ready.committed {
                if !nodes[i].disk.holds(entry) { fail("node \(i + 1) was handed entry \(entry.index) to apply before it was on its disk") }
                apply(entry, on: i)
            }
            ready.committed = []
            if !ready.isEmpty {
                // A leader's appends go out before its own sync once its term is durable (thesis §10.2.1).
                if nodes[i].disk.hardState.term == nodes[i].raft.term {
                    for message in ready.messagesBeforeSync { send(message) }
                } else {
                    ready.messages = ready.messagesBeforeSync + ready.messages
                }
                ready.messagesBeforeSync = []
                // A Ready that needs no sync is only written: done once the ones before it are.
                nodes[i].unsynced.append((ready.mustSync ? now + Int(rng.next() % 3) : now, ready))
            }
            sync(i)
        }
        checkInvariants()
    }

    /// The node's local clock, in ms: it runs at its own rate.
    func clock(_ i: Int) -> Timestamp {
        Timestamp(milliseconds: 1_000_000 + UInt64(now * nodes[i].clockRate / 1000))
    }

    // MARK: - Faults

    mutating func injectFaults() {
        guard rng.next() % 1000 < 4 else { return }  // about every 250 ms
        let n = nodes.count
        switch rng.next() % 6 {
        case 0, 1:
            let victim = Int(rng.next() % UInt64(n))
            let upCount = nodes.filter(\.up).count
            if nodes[victim].up && upCount > 1 { crash(victim, downFor: 20 + Int(rng.next() % 400)) }
        case 2:
            // Isolate one node (often the leader) both ways.
            let leader = nodes.firstIndex { $0.up && $0.raft.isLeader }
            let victim = (rng.next() % 2 == 0 ? leader : nil) ?? Int(rng.next() % UInt64(n))
            for other in 0..<n where other != victim {
                cut.insert([victim, other])
                cut.insert([other, victim])
            }
            trace(1, UInt64(victim))
        case 3:
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
        nodes[i].up = false
        nodes[i].unsynced.removeAll()  // not yet synced: gone
        if let written = nodes[i].disk.written, rng.next() % 2 == 0 { nodes[i].disk.hardState = written }  // or it reached the disk anyway
        nodes[i].disk.written = nil
        nodes[i].restartAt = now + downFor
        trace(4, UInt64(i))
    }

    /// Rebuilds the node from its disk alone.
    mutating func restart(_ i: Int) {
        let disk = nodes[i].disk
        let raft = nodes[i].raft
        nodes[i].raft = Raft(
            id: raft.id, configuration: raft.configuration, hardState: disk.hardState, snapshot: disk.snapshot,
            entries: disk.entries, seed: seed &+ UInt64(now))
        nodes[i].machine = disk.snapshot.data.isEmpty ? StateMachine() : try! StateMachine(restoring: ByteBuffer(bytes: disk.snapshot.data))
        nodes[i].applied = disk.snapshot.index
        nodes[i].up = true
        nodes[i].nextTick = now + 1
        trace(5, UInt64(i))
    }

    // MARK: - Network

    mutating func send(_ envelope: RaftEnvelope) {
        let from = Int(envelope.from.rawValue) - 1
        let to = Int(envelope.to.rawValue) - 1
        if cut.contains([from, to]) || Int(rng.next() % 1000) < dropPerMille { return }
        let copies = Int(rng.next() % 1000) < duplicatePerMille ? 2 : 1
        for _ in 0..<copies {
            messageOrder += 1
            network.append(Message(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: messageOrder, envelope: envelope))
        }
    }

    mutating func deliverMessages() {
        guard !network.isEmpty else { return }
        var due = network.filter { $0.due <= now }
        guard !due.isEmpty else { return }
        network.removeAll { $0.due <= now }
        due.sort { ($0.due, $0.order) < ($1.due, $1.order) }
        for m in due {
            let to = Int(m.envelope.to.rawValue) - 1
            guard nodes[to].up else { continue }
            trace(6, m.envelope.from.rawValue &* 31 &+ m.envelope.to.rawValue &* 7 &+ m.envelope.term.rawValue)
            nodes[to].raft.step(m.envelope)
        }
    }

    // MARK: - Sync and apply

    /// Makes the node's due readies durable, in order, then sends their messages and applies their entries.
    mutating func sync(_ i: Int) {
        while let first = nodes[i].unsynced.first, first.due <= now {
            nodes[i].unsynced.removeFirst()
            let ready = first.ready
            if ready.mustSync {
                if let written = nodes[i].disk.written { nodes[i].disk.hardState = written }  // synced along
                nodes[i].disk.written = nil
                if let hs = ready.hardState { nodes[i].disk.hardState = hs }
            } else if let hs = ready.hardState {
                nodes[i].disk.written = hs
            }
            if let snapshot = ready.snapshot {
                nodes[i].disk.snapshot = snapshot
                nodes[i].disk.entries.removeAll()
                nodes[i].machine = try! StateMachine(restoring: ByteBuffer(bytes: snapshot.data))
                nodes[i].applied = snapshot.index
            }
            for entry in ready.entries {
                if let at = nodes[i].disk.entries.firstIndex(where: { $0.index >= entry.index }) {
                    nodes[i].disk.entries.removeSubrange(at...)
                }
                nodes[i].disk.entries.append(entry)
            }
            if let last = ready.entries.last { nodes[i].raft.persisted(through: last.index, term: last.term) }
            for message in ready.messages { send(message) }
        }
        maybeSnapshot(i)
    }

    mutating func apply(_ entry: LogEntry, on i: Int) {
        guard entry.index > nodes[i].applied else { return }  // covered by a snapshot restored meanwhile
        if entry.index != nodes[i].applied.advanced(by: 1) {
            fail("node \(i + 1) applied \(entry.index) after \(nodes[i].applied)")
            return
        }
        nodes[i].applied = entry.index
        if let known = appliedEntries[entry.index] {
            if known.term != entry.term || known.data != entry.data {
                fail("index \(entry.index) applied as term \(entry.term) on node \(i + 1), as term \(known.term) elsewhere")
                return
            }
        } else {
            appliedEntries[entry.index] = (entry.term, entry.data)
        }
        trace(7, entry.index.rawValue &* 131 &+ entry.term.rawValue)
        var replies: [Reply] = []
        if !entry.data.isEmpty {
            let input = try! TimedInput.decode(entry.data)
            let result = nodes[i].machine.apply(input.input, at: input.time)
            if let reply = result.reply { replies.append(reply) }
            replies += result.completions.map(\.reply)
            // Answers are the same on every node (checked below), so the cluster's history is the
            // sequence of first applications, which come in log order.
            if answers[entry.index] == nil { observe(input.input, reply: result.reply, on: i) }
            acknowledge(entry, reply: result.reply, on: i)
        }
        if let known = answers[entry.index] {
            if known != replies { fail("index \(entry.index) answered \(replies) on node \(i + 1), \(known) elsewhere") }
        } else {
            answers[entry.index] = replies
        }
    }

    mutating func maybeSnapshot(_ i: Int) {
        guard nodes[i].applied.rawValue >= nodes[i].raft.snapshotIndex.rawValue + 40 else { return }
        let index = nodes[i].applied
        guard let term = nodes[i].raft.term(at: index) else { return }
        var buffer = nodes[i].machine.snapshot()
        let snapshot = Snapshot(index: index, term: term, data: buffer.readBytes(length: buffer.readableBytes) ?? [])
        nodes[i].raft.compact(to: snapshot)
        // The snapshot is written (atomically) before the entries it covers are dropped.
        nodes[i].disk.snapshot = snapshot
        nodes[i].disk.entries.removeAll { $0.index <= index }
        trace(8, index.rawValue)
    }

    // MARK: - Clients

    mutating func driveClients() {
        guard !clientsStopped else { return }
        for c in clients.indices {
            if let out = clients[c].outstanding {
                // No answer after a while (leader gone, entry lost): send it again, same sequence number.
                if now - out.sentAt > 150 { propose(c, out.command, retry: true) }
                continue
            }
            guard clients[c].nextActionAt <= now else { continue }
            propose(c, nextCommand(c), retry: false)
        }
    }

    mutating func nextCommand(_ c: Int) -> Command {
        let key = "lock-\(rng.next() % 3)"
        // (Smallest key first: a dictionary's own order differs from process to process.)
        if let (held, token) = clients[c].heldLocks.min(by: { $0.key < $1.key }), rng.next() % 3 == 0 {
            return rng.next() % 2 == 0 ? .releaseLock(key: held, token: token) : .renewLock(key: held, token: token, ttl: 200)
        }
        if let (job, token) = clients[c].claimed.min(by: { $0.key < $1.key }) {
            return .completeJob(job, token: token, result: [1])
        }
        switch rng.next() % 4 {
        case 0, 1: return .acquireLock(key: key, owner: "c\(c)", ttl: Milliseconds(50 + UInt32(rng.next() % 250)), wait: 0)
        case 2: return .addJob(JobSpec(type: "t", payload: [UInt8(c)]))
        default: return .claimJob(types: ["t"], worker: "c\(c)", wait: 0)
        }
    }

    mutating func propose(_ c: Int, _ command: Command, retry: Bool) {
        let candidates = nodes.indices.filter { nodes[$0].up && nodes[$0].raft.isLeader }
        guard !candidates.isEmpty else { return }
        let i = candidates[Int(rng.next() % UInt64(candidates.count))]
        if !retry { clients[c].sequence += 1 }
        let input = StateMachineInput.command(clients[c].id, SequenceNumber(clients[c].sequence), command)
        guard let index = nodes[i].raft.propose(TimedInput(input, at: clock(i)).encode()) else { return }
        clients[c].outstanding = (command, i, index, nodes[i].raft.term, now)
    }

    /// The node the client asked applied an entry: if it is the client's, the client has its answer.
    mutating func acknowledge(_ entry: LogEntry, reply: Reply?, on i: Int) {
        guard let input = try? TimedInput.decode(entry.data), case .command(let client, _, let command) = input.input,
            let c = clients.firstIndex(where: { $0.id == client }), let out = clients[c].outstanding,
            out.node == i, out.index == entry.index, out.term == entry.term
        else { return }
        clients[c].outstanding = nil
        clients[c].nextActionAt = now + Int(rng.next() % 10)
        acknowledgedCommands += 1
        switch (command, reply) {
        case (.acquireLock(let key, _, _, _), .lockAcquired(.granted(let token, _, _))?):
            clients[c].heldLocks[key] = token
        case (.releaseLock(let key, _), _):
            clients[c].heldLocks[key] = nil
        case (.renewLock(let key, _, _), .error?):
            clients[c].heldLocks[key] = nil
        case (.addJob, .jobAdded(let id, _)?):
            acknowledgedJobs.insert(id)
        case (.claimJob, .jobClaimed(let job?)?):
            clients[c].claimed[job.id] = job.token
        case (.completeJob(let id, _, _), _):
            clients[c].claimed[id] = nil
        default:
            break
        }
    }

    // MARK: - Invariants

    /// From the cluster's answers, in log order: each key's current lease.
    var leases: [String: (token: FencingToken, expires: Timestamp, released: Bool)] = [:]
    var highestToken = FencingToken(0)
    var observedCommands: Set<UInt64> = []
    /// Who completed each job, as (client, sequence). A retry is the same pair.
    var completions: [JobID: [UInt64]] = [:]

    /// Checks one applied command's answer against the node's history: at most one holder of a lock
    /// at a time, fencing tokens strictly increasing, no job completed twice.
    mutating func observe(_ input: StateMachineInput, reply: Reply?, on i: Int) {
        guard case .command(let client, let sequence, let command) = input, let reply else { return }
        // A retry that reached the log twice is answered from the session's memory: not a new event.
        guard observedCommands.insert(client.rawValue &* 1_000_003 &+ sequence.rawValue).inserted else { return }
        let now = nodes[i].machine.now
        switch (command, reply) {
        case (.acquireLock(let key, _, _, _), .lockAcquired(.granted(let token, let expires, _))):
            if let held = leases[key], !held.released, held.expires > now, held.token != token {
                fail("\(key) granted to token \(token) while token \(held.token) holds it until \(held.expires)")
            }
            if token <= highestToken && leases[key]?.token != token {
                fail("token \(token) granted after \(highestToken)")
            }
            highestToken = max(highestToken, token)
            leases[key] = (token, expires, false)
        case (.renewLock(let key, let token, _), .lockRenewed(let expires, _)):
            if leases[key]?.token == token { leases[key]?.expires = expires }
        case (.releaseLock(let key, let token), .lockReleased):
            if leases[key]?.token == token { leases[key]?.released = true }
        case (.completeJob(let id, _, _), .jobCompleted):
            let by = client.rawValue &* 1_000_003 &+ sequence.rawValue
            if let earlier = completions[id], !earlier.contains(by) {
                fail("job \(id) completed twice")
            }
            completions[id, default: []].append(by)
        default:
            break
        }
    }

    mutating func checkInvariants() {
        for node in nodes where node.up && node.raft.isLeader {
            if let other = leaders[node.raft.term], other != node.raft.id {
                fail("two leaders in term \(node.raft.term): \(other) and \(node.raft.id)")
            }
            if leaders[node.raft.term] == nil {
                leaders[node.raft.term] = node.raft.id
                elections += 1
                // Leader completeness: every applied entry is in the new leader's log.
                for (index, known) in appliedEntries where index > node.raft.snapshotIndex {
                    if node.raft.term(at: index) != known.term {
                        fail("leader \(node.raft.id) of term \(node.raft.term) lacks applied entry \(index)")
                    }
                }
            }
        }
        if now % 25 == 0 { checkLogMatching() }
    }

    /// Two logs with an entry of the same index and term hold the same entries up to it.
    mutating func checkLogMatching() {
        for a in nodes.indices {
            for b in nodes.indices where b > a {
                let la = nodes[a].raft.log, lb = nodes[b].raft.log
                let low = max(la.firstIndex, lb.firstIndex)
                let high = min(la.lastIndex, lb.lastIndex)
                guard low <= high else { continue }
                var index = high
                while index >= low, la.term(at: index) != lb.term(at: index) { index = index.advanced(by: -1) }
                while index >= low {
                    if la.slice(from: index, through: index, limit: 1) != lb.slice(from: index, through: index, limit: 1) {
                        fail("logs of nodes \(a + 1) and \(b + 1) differ at \(index) below a matching entry")
                        return
                    }
                    index = index.advanced(by: -1)
                }
            }
        }
    }

    /// After healing: a leader, every node caught up, every acknowledged job present everywhere.
    mutating func checkFinalState() {
        guard let leader = nodes.firstIndex(where: { $0.up && $0.raft.isLeader }) else {
            fail("no leader \(options.milliseconds - options.healAfter) ms after healing")
            return
        }
        for i in nodes.indices where nodes[i].applied != nodes[leader].raft.commit {
            fail("node \(i + 1) applied \(nodes[i].applied), the leader committed \(nodes[leader].raft.commit), 2 s after the clients stopped")
            return
        }
        for i in nodes.indices {
            for job in acknowledgedJobs {
                guard case .job = nodes[i].machine.query(.getJob(job)) else {
                    fail("acknowledged job \(job) missing on node \(i + 1)")
                    return
                }
            }
        }
    }

    mutating func fail(_ text: String) {
        failures.append("seed \(seed), \(now) ms: \(text)")
    }

    mutating func trace(_ kind: UInt64, _ value: UInt64) {
        for v in [kind, value, UInt64(now)] {
            traceHash = (traceHash ^ v) &* 0x100_0000_01b3
        }
    }
}
