public enum RaftRole: String, Sendable, Hashable {
    case follower, preCandidate, candidate, leader
}

/// What the node must do after one or more steps.
///
/// **The handling loop** (as etcd-io/raft's `doc.go` describes its own):
/// 1. Step messages, ticks and proposals into the core, as they come.
/// 2. Take `ready()`, then, in any order: send `messages`, apply `committed`, answer `readsReady`
///    and refuse `readsFailed`; and hand the durable part (`snapshot`, `entries`, `hardState`) to
///    storage, in the order the Readies came, syncing it when `mustSync` says so.
/// 3. Once storage made a durable part durable, report it with `persisted(_:)`, in order.
///
/// The core keeps the rule that makes this safe: **nothing is sent before the state it depends on
/// is durable.** A vote, an acknowledgement of entries or any message of a term not yet synced is
/// held inside the core until the persist before it is reported, and comes out in a later Ready's
/// `messages`. So a shell may send `messages` at once, whatever storage is doing.
public struct RaftReady: Sendable {
    /// The new hard state, when it changed.
    public var hardState: HardState?
    /// Whether the durable part must be synced before it is reported: it holds entries, a snapshot,
    /// or a new term or vote. A hard state whose commit index alone moved may be written unsynced: a
    /// node that restarts with an older commit index learns the newer one from the leader again
    /// (etcd-io/raft's MustSync).
    public var mustSync = false
    /// A snapshot received from the leader: persist it, restore the state machine from it, and drop
    /// the log it covers. Comes before `entries`.
    public var snapshot: Snapshot?
    /// Entries to append; an entry at index i replaces the stored one at i and everything after it.
    public var entries: [LogEntry] = []
    /// Names the durable part above when there is one: report it with `persisted(_:)` once durable.
    public var persist: PersistID?
    /// To send now. What depends on a durable part not yet reported waits in the core. A leader's
    /// appends and heartbeats, and a follower's heartbeat replies, go out as soon as the node's
    /// current term and vote are durable, without waiting for entries: a leader's own copy counts
    /// towards a commit only once `persisted(_:)` reports it, so the followers sync while it syncs
    /// (Raft thesis §10.2.1), and a heartbeat reply claims nothing about the follower's log but what
    /// it received, so a follower's slow disk does not look like a lost follower.
    public var messages: [RaftEnvelope] = []
    /// Committed entries to apply, in order. Every one was reported durable here by an earlier
    /// `persisted(_:)`, so they need not wait for this Ready's durable part.
    public var committed: [LogEntry] = []
    /// Read requests whose read index is confirmed: answer each once the applied index reaches it.
    public var readsReady: [(id: ReadID, index: LogIndex)] = []
    /// Read requests that cannot be served here (not the leader, or leadership lost).
    public var readsFailed: [ReadID] = []

    public var isEmpty: Bool {
        hardState == nil && snapshot == nil && entries.isEmpty && messages.isEmpty && committed.isEmpty
            && readsReady.isEmpty && readsFailed.isEmpty
    }
}

/// A Ready's durable part on its way to the disk, and the messages that wait for it.
private struct Persisting: Sendable {
    var id: PersistID
    /// The last entry it holds, by index and term.
    var last: (index: LogIndex, term: Term)?
    /// The term of the hard state it holds.
    var term: Term?
    var held: [RaftEnvelope]
}

/// The Raft core: leader election with pre-vote and check-quorum, log replication with batching and
/// pipelining, commitment by majority, snapshots for lagging followers, and read-index reads.
///
/// It is a value with no I/O and no clock, shaped like etcd-io/raft: time passes by `tick()`,
/// messages come in through `step(_:)`, clients' commands through `propose(_:)`, and everything the
/// node must do comes out of `ready()`. Randomness (election timeouts) comes from a seeded generator,
/// so a simulation replays exactly.
public struct Raft: Sendable {
    public let id: NodeIndex
    public let configuration: RaftConfiguration
    public private(set) var term: Term
    public private(set) var vote: NodeIndex
    public private(set) var commit: LogIndex
    public private(set) var role: RaftRole = .follower
    /// The leader this node follows (itself when leading); `.none` when it knows of none.
    public private(set) var leader: NodeIndex = .none
    /// An opaque value the application puts in this node's heartbeats while it leads (Baton: the
    /// cluster's time). Raft only carries it.
    public var heartbeatContext: UInt64 = 0
    /// The `heartbeatContext` of the newest heartbeat this node accepted from a leader (0: none yet).
    public private(set) var leaderContext: UInt64 = 0
    /// The term of the leader that sent `leaderContext`.
    public private(set) var leaderContextTerm = Term(0)

    var log: RaftLog
    /// Committed entries up to here have been handed out to apply.
    private(set) var applied: LogIndex
    private var ticks: UInt64 = 0
    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedElectionTimeout = 0
    private var votes: [NodeIndex: Bool] = [:]
    private var progress: [NodeIndex: Progress] = [:]
    private var rng: SplitMix64
    /// The other members, in configuration order: iterating a dictionary instead would make the
    /// order of messages (and so a simulation) vary from process to process.
    private let peers: [NodeIndex]
    /// Messages that wait for everything handed out to be durable.
    private var outbox: [RaftEnvelope] = []
    /// Messages that wait only for the current term and vote to be durable.
    private var earlyOutbox: [RaftEnvelope] = []
    /// Held messages whose persist was reported: they go out with the next Ready.
    private var released: [RaftEnvelope] = []
    /// Durable parts handed out and not yet reported, oldest first.
    private var persisting: [Persisting] = []
    private var lastPersist = PersistID(0)
    /// The local log is durable up to here (reported by the runtime after each sync).
    private var stableIndex: LogIndex
    /// The newest term reported durable.
    private var durableTerm: Term
    /// The hard state last handed out.
    private var handedOutHardState: HardState
    private var receivedSnapshot: Snapshot?
    private var appendsPending = false
    // Read index.
    private var round: UInt64 = 0
    private var reads: [(id: ReadID, index: LogIndex, round: UInt64)] = []
    private var readsWaitingForCommit: [ReadID] = []
    private var readsReady: [(id: ReadID, index: LogIndex)] = []
    private var readsFailed: [ReadID] = []

    /// A node starting from what it persisted: its hard state, its latest snapshot and the entries after it.
    public init(
        id: NodeIndex, configuration: RaftConfiguration, hardState: HardState = HardState(),
        snapshot: Snapshot = .empty, entries: [LogEntry] = [], seed: UInt64
    ) {
        precondition(configuration.validate().isEmpty, "\(configuration.validate())")
        precondition(configuration.members.contains(id), "node \(id) is not a member")
        self.id = id
        self.configuration = configuration
        self.peers = configuration.members.filter { $0 != id }
        self.term = hardState.term
        self.vote = hardState.vote
        self.log = RaftLog(snapshot: snapshot, entries: entries)
        // A commit index past the log's end: a follower learns it with the entries it commits, and a
        // crash may keep the hard state of a write whose entries did not reach the disk (they were
        // never acknowledged). It is knowledge, not a promise: start from what the log holds and
        // learn the rest from the leader again.
        self.commit = max(min(hardState.commit, self.log.lastIndex), snapshot.index)
        self.applied = snapshot.index
        self.handedOutHardState = HardState(term: hardState.term, vote: hardState.vote, commit: commit)  // none to write yet
        self.durableTerm = hardState.term
        self.stableIndex = snapshot.index.advanced(by: Int64(entries.count))
        self.rng = SplitMix64(seed: seed ^ id.rawValue &* 0x9E37_79B9_7F4A_7C15)
        resetElectionTimer()
        // A cluster of one is its own quorum: it elects itself at once rather than after a timeout.
        if configuration.members.count == 1 { campaign(preVote: false) }
    }

    public var lastIndex: LogIndex { log.lastIndex }
    public var snapshotIndex: LogIndex { log.snapshot.index }
    public var isLeader: Bool { role == .leader }

    /// The term of the entry at `index`, if the log still has it.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }

    /// The entry at `index`, if the log still has it.
    public func entry(at index: LogIndex) -> LogEntry? { log.slice(from: index, through: index, limit: 1).first }

    /// How far each follower's log matches the leader's (leader only; empty otherwise).
    public var matchIndexes: [NodeIndex: LogIndex] {
        guard role == .leader else { return [:] }
        var m = progress.mapValues(\.match)
        m[id] = log.lastIndex
        return m
    }

    // MARK: - Input

    /// One unit of time.
    public mutating func tick() {
        ticks += 1
        if role == .leader {
            electionElapsed += 1
            heartbeatElapsed += 1
            if electionElapsed >= configuration.electionTicks {
                electionElapsed = 0
                // Check quorum: a leader that has not heard from a majority in an election timeout
                // steps down, so a partitioned leader stops accepting writes it cannot commit.
                let active = progress.values.filter(\.recentActive).count + 1
                if active < configuration.quorum {
                    becomeFollower(term: term, leader: .none)
                    return
                }
                for peer in progress.keys { progress[peer]?.recentActive = false }
            }
            if heartbeatElapsed >= configuration.heartbeatTicks {
                heartbeatElapsed = 0
                broadcastHeartbeat()
            }
            resendStalledSnapshots()
        } else {
            electionElapsed += 1
            if electionElapsed >= randomizedElectionTimeout {
                campaign(preVote: true)
            }
        }
    }

    /// Appends `data` to the log if this node leads; returns its index, or nil (not the leader).
    public mutating func propose(_ data: [UInt8]) -> LogIndex? {
        guard role == .leader else { return nil }
        let index = log.lastIndex.advanced(by: 1)
        log.append(LogEntry(term: term, index: index, data: data))
        appendsPending = true  // it commits once synced here (`persisted`) and on enough followers
        return index
    }

    /// Asks for a linearizable read: once a quorum confirms this node still leads, `ready()` reports
    /// `id` with the commit index at the time of asking; answer the read when that is applied.
    public mutating func readIndex(_ id: ReadID) {
        guard role == .leader else {
            readsFailed.append(id)
            return
        }
        // Until an entry of its own term commits, a new leader does not know the true commit index.
        guard log.term(at: commit) == term else {
            readsWaitingForCommit.append(id)
            return
        }
        if configuration.members.count == 1 {
            readsReady.append((id, commit))
            return
        }
        round += 1
        reads.append((id, commit, round))
        broadcastHeartbeat()
    }

    /// A message from another node.
    public mutating func step(_ m: RaftEnvelope) {
        guard m.to == id, m.from != id, configuration.members.contains(m.from) else { return }
        if m.term > term {
            switch m.message {
            case .preVote, .vote:
                // A leader was heard within the election timeout: a campaign now is disruptive (a node
                // that was cut off), so ignore it rather than let it depose a healthy leader.
                if leader != .none && electionElapsed < configuration.electionTicks { return }
            default: break
            }
            switch m.message {
            case .preVote:
                break  // a pre-vote changes no term
            case .preVoteReply(granted: true):
                break  // the term of the campaign we asked about
            case .append, .heartbeat, .installSnapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: .none)
            }
        } else if m.term < term {
            switch m.message {
            case .append, .heartbeat, .installSnapshot:
                // A deposed leader: tell it the term, so it steps down.
                send(to: m.from, .appendReply(success: false, index: .zero, hint: .zero))
            case .preVote:
                send(to: m.from, .preVoteReply(granted: false))
            default:
                break
            }
            return
        }

        if role == .leader {
            switch m.message {
            case .append, .heartbeat, .installSnapshot: return  // two leaders in one term cannot happen
            default: break
            }
        }
        switch m.message {
        case .preVote(let lastIndex, let lastTerm), .vote(let lastIndex, let lastTerm):
            let isPre = if case .preVote = m.message { true } else { false }
            let canVote = vote == m.from || (vote == .none && leader == .none) || (isPre && m.term > term)
            let granted = canVote && log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            if isPre {
                // Granted: answer in the campaign's term; refused: in ours, which may teach it ours.
                outbox.append(RaftEnvelope(from: id, to: m.from, term: granted ? m.term : term, message: .preVoteReply(granted: granted)))
            } else {
                if granted {
                    vote = m.from
                    electionElapsed = 0
                }
                send(to: m.from, .voteReply(granted: granted))
            }
        case .preVoteReply(let granted):
            guard role == .preCandidate, !granted || m.term == term.next else { return }
            tally(m.from, granted)
        case .voteReply(let granted):
            guard role == .candidate else { return }
            tally(m.from, granted)
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            if role != .follower || leader != m.from { becomeFollower(term: term, leader: m.from) }
            electionElapsed = 0
            handleAppend(from: m.from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case .heartbeat(let commit, let round, let context):
            if role != .follower || leader != m.from { becomeFollower(term: term, leader: m.from) }
            electionElapsed = 0
            leaderContext = context
            leaderContextTerm = term
            if commit > self.commit { self.commit = min(commit, log.lastIndex) }
            send(to: m.from, .heartbeatReply(round: round, syncing: stableIndex < log.lastIndex))
        case .installSnapshot(let snapshot):
            if role != .follower || leader != m.from { becomeFollower(term: term, leader: m.from) }
            electionElapsed = 0
            handleSnapshot(from: m.from, snapshot)
        case .appendReply(let success, let index, let hint):
            guard role == .leader else { return }
            handleAppendReply(from: m.from, success: success, index: index, hint: hint)
        case .heartbeatReply(let round, let syncing):
            guard role == .leader, var p = progress[m.from] else { return }
            p.recentActive = true
            p.acknowledgedRound = max(p.acknowledgedRound, round)
            if p.match < log.lastIndex, p.match == p.matchAtLastHeartbeat, !syncing {
                // No progress for a whole heartbeat interval from a follower with nothing left to sync:
                // appends or their replies were lost. Probe again from the match. (One that is still
                // syncing is left alone: its replies come once its disk catches up.)
                p.becomeProbe()
            }
            p.matchAtLastHeartbeat = p.match
            progress[m.from] = p
            releaseConfirmedReads()
            if p.match < log.lastIndex { sendAppend(to: m.from) }
        }
    }

    /// Storage made the durable part `id` durable (synced, when it had to be). Parts are reported
    /// in the order `ready()` handed them out; the messages that waited for this one go out with
    /// the next Ready.
    public mutating func persisted(_ id: PersistID) {
        guard let first = persisting.first, first.id == id else {
            preconditionFailure("persist \(id) reported out of order (expected \(persisting.first?.id.description ?? "none"))")
        }
        persisting.removeFirst()
        if let term = first.term { durableTerm = term }
        if let last = first.last, last.index > stableIndex, log.term(at: last.index) == last.term {
            stableIndex = last.index
            if role == .leader { maybeCommit() }
        }
        released += first.held
    }

    /// Forgets log entries up to `snapshot.index`, now held in `snapshot` (taken by the state machine
    /// at an applied index). Followers that need them get the snapshot instead.
    public mutating func compact(to snapshot: Snapshot) {
        precondition(snapshot.index <= applied, "a snapshot beyond the applied index")
        log.compact(to: snapshot)
    }

    // MARK: - Output

    /// Everything to do since the last call; see `RaftReady` for the order.
    public mutating func ready() -> RaftReady {
        if appendsPending {
            appendsPending = false
            for peer in peers { sendAppend(to: peer) }
        }
        var r = RaftReady()
        let hardState = HardState(term: term, vote: vote, commit: commit)
        if hardState != handedOutHardState {
            r.hardState = hardState
            r.mustSync = hardState.term != handedOutHardState.term || hardState.vote != handedOutHardState.vote
            handedOutHardState = hardState
        }
        r.snapshot = receivedSnapshot
        receivedSnapshot = nil
        r.entries = log.takeUnstable()
        if r.snapshot != nil || !r.entries.isEmpty { r.mustSync = true }
        // Swapped rather than copied: no buffer is shared, so none is copied or allocated again.
        swap(&r.messages, &released)
        var held: [RaftEnvelope] = []
        swap(&held, &outbox)
        // A leader's first hard state of its term holds its vote for itself, so a durable term
        // means a durable vote too.
        if durableTerm == term {
            if r.messages.isEmpty { swap(&r.messages, &earlyOutbox) } else { r.messages += earlyOutbox }
        } else {
            held = earlyOutbox + held
        }
        earlyOutbox.removeAll(keepingCapacity: true)
        if r.hardState != nil || r.snapshot != nil || !r.entries.isEmpty {
            lastPersist = PersistID(lastPersist.rawValue + 1)
            r.persist = lastPersist
            persisting.append(
                Persisting(id: lastPersist, last: r.entries.last.map { ($0.index, $0.term) }, term: r.hardState?.term, held: held))
        } else if !held.isEmpty {
            // Nothing of its own to persist: it waits for the persists before it, if any.
            if persisting.isEmpty {
                r.messages += held
            } else {
                persisting[persisting.count - 1].held += held
            }
        }
        // Only what is durable here: a follower may learn of a commit before its own copy is synced.
        let applicable = min(commit, stableIndex)
        if applicable > applied {
            r.committed = log.slice(from: applied.advanced(by: 1), through: applicable, limit: .max)
            applied = applicable
        }
        r.readsReady = readsReady
        r.readsFailed = readsFailed
        readsReady.removeAll()
        readsFailed.removeAll()
        return r
    }

    // MARK: - Elections

    private mutating func campaign(preVote: Bool) {
        electionElapsed = 0
        resetElectionTimer()
        votes = [id: true]
        leader = .none
        failReads()
        if preVote {
            role = .preCandidate
        } else {
            role = .candidate
            term = term.next
            vote = id
        }
        if votes.count >= configuration.quorum {
            preVote ? campaign(preVote: false) : becomeLeader()
            return
        }
        let campaignTerm = preVote ? term.next : term
        for peer in peers {
            let message: RaftMessage =
                preVote
                ? .preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm)
                : .vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm)
            outbox.append(RaftEnvelope(from: id, to: peer, term: campaignTerm, message: message))
        }
    }

    private mutating func tally(_ from: NodeIndex, _ granted: Bool) {
        votes[from] = votes[from] ?? granted
        let yes = votes.values.filter { $0 }.count
        let no = votes.count - yes
        if yes >= configuration.quorum {
            role == .preCandidate ? campaign(preVote: false) : becomeLeader()
        } else if no >= configuration.quorum {
            becomeFollower(term: term, leader: .none)
        }
    }

    private mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeIndex) {
        if newTerm != term {
            term = newTerm
            vote = .none
        }
        if role == .leader || newLeader != leader { failReads() }
        role = .follower
        leader = newLeader
        electionElapsed = 0
        progress.removeAll()
        resetElectionTimer()
    }

    private mutating func becomeLeader() {
        role = .leader
        leader = id
        electionElapsed = 0
        heartbeatElapsed = 0
        progress.removeAll()
        for peer in peers {
            var p = Progress(next: log.lastIndex.advanced(by: 1))
            p.recentActive = true  // a fresh leader gets a full election timeout before check-quorum
            progress[peer] = p
        }
        // An empty entry of its own term: committing it commits everything before it (Raft §5.4.2)
        // and tells the leader its commit index, which read-index reads need.
        _ = propose([])
    }

    private mutating func resetElectionTimer() {
        let base = configuration.electionTicks
        randomizedElectionTimeout = base + Int(rng.next() % UInt64(max(base, 1)))
    }

    // MARK: - Replication

    private mutating func handleAppend(
        from leader: NodeIndex, prevIndex: LogIndex, prevTerm: Term, entries: [LogEntry], commit leaderCommit: LogIndex
    ) {
        if prevIndex < commit {
            // Everything up to our commit index matches any leader's log already.
            let skip = entries.filter { $0.index > commit }
            if skip.count < entries.count {
                handleAppend(from: leader, prevIndex: commit, prevTerm: log.term(at: commit) ?? .zero, entries: skip, commit: leaderCommit)
            } else {
                send(to: leader, .appendReply(success: true, index: commit, hint: log.lastIndex))
            }
            return
        }
        guard log.matches(prevIndex, prevTerm) else {
            send(to: leader, .appendReply(success: false, index: prevIndex, hint: log.lastIndex))
            return
        }
        let (last, conflict) = log.merge(after: prevIndex, entries)
        if let conflict {
            // A conflicting suffix was replaced: what was synced past the conflict is not this log any more.
            stableIndex = min(stableIndex, conflict.advanced(by: -1))
        }
        if leaderCommit > commit { commit = min(leaderCommit, last) }
        send(to: leader, .appendReply(success: true, index: last, hint: log.lastIndex))
    }

    private mutating func handleSnapshot(from leader: NodeIndex, _ snapshot: Snapshot) {
        if snapshot.index <= commit {
            send(to: leader, .appendReply(success: true, index: commit, hint: log.lastIndex))
            return
        }
        if log.matches(snapshot.index, snapshot.term) {
            // We hold the entries the snapshot covers: they are committed.
            commit = snapshot.index
        } else {
            log.restore(snapshot)
            stableIndex = snapshot.index
            commit = snapshot.index
            applied = snapshot.index
            receivedSnapshot = snapshot
        }
        send(to: leader, .appendReply(success: true, index: snapshot.index, hint: log.lastIndex))
    }

    private mutating func handleAppendReply(from peer: NodeIndex, success: Bool, index: LogIndex, hint: LogIndex) {
        guard var p = progress[peer] else { return }
        p.recentActive = true
        if success {
            p.acknowledge(index)
            switch p.state {
            case .probe:
                p.becomeReplicate()
            case .snapshot(let snapshotIndex, _) where p.match >= snapshotIndex:
                p.becomeReplicate()
            default:
                break
            }
            progress[peer] = p
            maybeCommit()
            sendAppend(to: peer)
            return
        }
        if index == .zero && hint == .zero { return }  // only a term notice, handled by the term check
        switch p.state {
        case .replicate:
            if index <= p.match { return }  // stale
            p.becomeProbe()
        case .probe:
            if index != p.next.advanced(by: -1) { return }  // stale
            p.next = max(p.match.advanced(by: 1), min(index, hint.advanced(by: 1)))
            p.probeSent = false
        case .snapshot:
            return
        }
        progress[peer] = p
        sendAppend(to: peer)
    }

    /// Sends `peer` the entries it lacks, within its flow-control limits; a snapshot if they are gone.
    private mutating func sendAppend(to peer: NodeIndex) {
        guard var p = progress[peer] else { return }
        switch p.state {
        case .probe where p.probeSent: return
        case .replicate where p.inflight.count >= configuration.maxInflightAppends: return
        case .snapshot: return
        default: break
        }
        let prevIndex = p.next.advanced(by: -1)
        guard let prevTerm = log.term(at: prevIndex) else {
            p.state = .snapshot(index: log.snapshot.index, sentAtTick: ticks)
            progress[peer] = p
            send(to: peer, .installSnapshot(log.snapshot))
            return
        }
        let entries = log.slice(
            from: p.next, through: log.lastIndex, limit: configuration.maxEntriesPerAppend, maxBytes: configuration.maxBytesPerAppend)
        if entries.isEmpty && p.state == .replicate { return }  // nothing new; heartbeats carry the commit
        send(to: peer, .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit))
        if p.state == .replicate, let last = entries.last {
            p.next = last.index.advanced(by: 1)
            p.inflight.append(last.index)
        } else if p.state == .probe {
            p.probeSent = true
        }
        progress[peer] = p
        // Pipelining: keep sending while there is more and room for it.
        if p.state == .replicate, p.next <= log.lastIndex, p.inflight.count < configuration.maxInflightAppends {
            sendAppend(to: peer)
        }
    }

    private mutating func resendStalledSnapshots() {
        for peer in peers {
            guard let p = progress[peer] else { continue }
            if case .snapshot(_, let sentAt) = p.state, ticks - sentAt >= UInt64(configuration.electionTicks * 2) {
                progress[peer]?.becomeProbe()
                sendAppend(to: peer)
            }
        }
    }

    private mutating func broadcastHeartbeat() {
        for peer in peers {
            guard let p = progress[peer] else { continue }
            send(to: peer, .heartbeat(commit: min(commit, p.match), round: round, context: heartbeatContext))
        }
    }

    /// Commits the highest index a quorum holds, if it is of the current term (Raft §5.4.2).
    private mutating func maybeCommit() {
        // The quorum-th highest match, its own durable index counted: on the stack, as this runs for
        // every persist and every append answer (an array here was an allocation per command).
        let candidate = withUnsafeTemporaryAllocation(of: LogIndex.self, capacity: progress.count + 1) { matches in
            var n = 0
            for p in progress.values {
                matches[n] = p.match
                n += 1
            }
            matches[n] = min(log.lastIndex, stableIndex)
            var used = UnsafeMutableBufferPointer(rebasing: matches[0...n])
            used.sort(by: >)
            return used[configuration.quorum - 1]
        }
        guard candidate > commit, log.term(at: candidate) == term else { return }
        commit = candidate
        if !readsWaitingForCommit.isEmpty {
            let waiting = readsWaitingForCommit
            readsWaitingForCommit.removeAll()
            for id in waiting { readIndex(id) }
        }
    }

    private mutating func releaseConfirmedReads() {
        while let first = reads.first {
            let confirmed = progress.values.filter { $0.acknowledgedRound >= first.round }.count + 1
            guard confirmed >= configuration.quorum else { return }
            readsReady.append((first.id, first.index))
            reads.removeFirst()
        }
    }

    private mutating func failReads() {
        readsFailed += reads.map(\.id) + readsWaitingForCommit
        reads.removeAll()
        readsWaitingForCommit.removeAll()
    }

    private mutating func send(to peer: NodeIndex, _ message: RaftMessage) {
        let envelope = RaftEnvelope(from: id, to: peer, term: term, message: message)
        switch message {
        case .append, .heartbeat, .installSnapshot:
            earlyOutbox.append(envelope)  // only a leader sends these
        case .heartbeatReply:
            // Depends on no entry being durable, only on the term: a follower whose disk stalls still
            // answers its leader, so check-quorum does not depose a leader for a slow follower disk.
            earlyOutbox.append(envelope)
        default:
            outbox.append(envelope)
        }
    }
}

extension Term {
    var next: Term { Term(rawValue + 1) }
}

/// A small, fast, seedable generator (SplitMix64), so a simulation with the same seed replays exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
