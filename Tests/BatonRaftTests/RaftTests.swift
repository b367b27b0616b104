import Testing

@testable import BatonRaft

/// A small lossless cluster for scenario tests: messages go out in order, except over cut links.
struct TestCluster {
    var nodes: [Raft]
    var cut: Set<[Int]> = []
    var queue: [RaftEnvelope] = []
    var committed: [[LogEntry]]
    var readsReady: [[ReadID]]
    var readsFailed: [[ReadID]]
    var snapshotsInstalled: [[Snapshot]]
    /// Nodes whose disk stalls: their durable parts wait in `held`, unreported, and Raft lets out
    /// only what may go before them.
    var stalled: Set<Int> = []
    var held: [Int: [PersistID]] = [:]
    /// Sees every message delivered.
    var observe: (RaftEnvelope) -> Void = { _ in }
    /// What happened, one line each (`Trace`): messages delivered, ticks, proposals, roles taken.
    var trace: [String] = []

    init(size: Int, seed: UInt64 = 1) {
        let members = (1...size).map { NodeIndex(UInt64($0)) }
        nodes = members.map { Raft(id: $0, configuration: RaftConfiguration(members: members), seed: seed) }
        committed = Array(repeating: [], count: size)
        readsReady = Array(repeating: [], count: size)
        readsFailed = Array(repeating: [], count: size)
        snapshotsInstalled = Array(repeating: [], count: size)
    }

    /// Collects every node's ready output and delivers messages until nothing moves.
    mutating func settle() {
        for _ in 0..<1000 {
            var progressed = false
            for i in nodes.indices {
                // A disk that keeps up reports each durable part at once, and what waited for it
                // comes out with the next Ready.
                while true {
                    let r = nodes[i].ready()
                    guard !r.isEmpty else { break }
                    progressed = true
                    queue += r.messages
                    committed[i] += r.committed
                    readsReady[i] += r.readsReady.map(\.id)
                    readsFailed[i] += r.readsFailed
                    if let s = r.snapshot { snapshotsInstalled[i].append(s) }
                    guard let id = r.persist else { break }
                    if stalled.contains(i) {
                        held[i, default: []].append(id)
                        break
                    }
                    nodes[i].persisted(id)
                }
            }
            guard !queue.isEmpty || progressed else { return }
            let batch = queue
            queue.removeAll()
            for m in batch {
                let from = Int(m.from.rawValue) - 1, to = Int(m.to.rawValue) - 1
                if !cut.contains([from, to]) {
                    observe(m)
                    trace.append(m.traceLine)
                    let before = nodes[to].role
                    nodes[to].step(m)
                    noteRole(to, before)
                } else {
                    trace.append("\(m.traceLine) (cut)")
                }
            }
        }
    }

    /// The stalled disk of node `i` catches up: its held readies are synced, in order, and their
    /// messages go out.
    mutating func unstall(_ i: Int) {
        stalled.remove(i)
        for id in held.removeValue(forKey: i) ?? [] { nodes[i].persisted(id) }
        settle()
    }

    mutating func tick(_ times: Int = 1, only: Set<Int>? = nil) {
        for _ in 0..<times {
            trace.append("tick")
            for i in nodes.indices where only?.contains(i) ?? true {
                let before = nodes[i].role
                nodes[i].tick()
                noteRole(i, before)
            }
            settle()
        }
    }

    /// Proposes `data` on node `i`; returns its index (nil: not the leader).
    mutating func propose(_ data: [UInt8], on i: Int) -> LogIndex? {
        let index = nodes[i].propose(data)
        trace.append("propose on \(i + 1): \(index.map { "index \($0)" } ?? "refused")")
        return index
    }

    mutating func noteRole(_ i: Int, _ before: RaftRole) {
        if nodes[i].role != before { trace.append("  \(i + 1) is \(nodes[i].role.rawValue) in t\(nodes[i].term)") }
    }

    mutating func isolate(_ i: Int) {
        trace.append("isolate \(i + 1)")
        for j in nodes.indices where j != i {
            cut.insert([i, j])
            cut.insert([j, i])
        }
    }

    var leaders: [Int] { nodes.indices.filter { nodes[$0].isLeader } }

    /// Ticks until exactly one node leads; returns it.
    mutating func electLeader() -> Int? {
        for _ in 0..<100 {
            tick()
            if leaders.count == 1 { return leaders[0] }
        }
        return nil
    }
}

@Suite struct RaftTests {
    /// Both followers' disks stall for three election timeouts while the leader keeps proposing: their
    /// heartbeat replies do not wait for the disk, so check-quorum keeps the leader, nobody campaigns,
    /// and once the disks catch up everything proposed meanwhile commits.
    @Test func followersWithStalledDisksKeepTheirLeader() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let term = cluster.nodes[leader].term
        let followers = cluster.nodes.indices.filter { $0 != leader }
        cluster.stalled = Set(followers)
        var last = LogIndex.zero
        for _ in 0..<(3 * cluster.nodes[leader].configuration.electionTicks) {
            guard let index = cluster.nodes[leader].propose([7]) else {
                Issue.record("the leader stopped taking proposals")
                return
            }
            last = index
            cluster.tick()
        }
        #expect(cluster.leaders == [leader])
        #expect(cluster.nodes.allSatisfy { $0.term == term })
        #expect(cluster.nodes[leader].commit < last)  // nothing commits while no follower syncs
        for f in followers { cluster.unstall(f) }
        cluster.tick(2)
        #expect(cluster.nodes[leader].commit >= last)
        #expect(cluster.leaders == [leader] && cluster.nodes.allSatisfy { $0.term == term })
    }

    @Test func threeNodesElectOneLeaderAndCommitOnAll() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let proposed = cluster.propose([42], on: leader)
        let index = try #require(proposed)
        cluster.settle()
        cluster.tick()  // the heartbeat carries the new commit index to the followers
        for i in 0..<3 {
            #expect(cluster.committed[i].contains { $0.index == index && $0.data == [42] }, "node \(i + 1)")
        }
        // A follower refuses to propose.
        let follower = (leader + 1) % 3
        #expect(cluster.propose([1], on: follower) == nil)
        #expect(cluster.nodes[follower].leader == cluster.nodes[leader].id)
        try Trace.check(cluster.trace, scenario: "three-nodes-elect-and-commit")
    }

    @Test func preVoteKeepsAnIsolatedNodeFromRaisingItsTerm() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let term = cluster.nodes[leader].term
        let follower = (leader + 1) % 3
        cluster.isolate(follower)
        cluster.tick(100)
        // It campaigned (pre-vote) many times but never won a pre-vote, so its term stayed.
        #expect(cluster.nodes[follower].term == term)
        cluster.cut.removeAll()
        cluster.tick(5)
        // Rejoining disturbs nobody: same leader, same term.
        #expect(cluster.leaders == [leader])
        #expect(cluster.nodes[leader].term == term)
        #expect(cluster.nodes[follower].leader == cluster.nodes[leader].id)
    }

    @Test func checkQuorumDeposesAnIsolatedLeader() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let old = try #require(elected)
        let term = cluster.nodes[old].term
        cluster.isolate(old)
        cluster.tick(2 * cluster.nodes[old].configuration.electionTicks + 1)
        // The old leader stepped down on its own: it stops accepting writes it cannot commit.
        #expect(!cluster.nodes[old].isLeader)
        #expect(cluster.nodes[old].propose([1]) == nil)
        let new = try #require(cluster.leaders.first)
        #expect(new != old)
        #expect(cluster.nodes[new].term > term)
        cluster.cut.removeAll()
        cluster.tick(3)
        #expect(cluster.nodes[old].leader == cluster.nodes[new].id)
        #expect(cluster.nodes[old].term == cluster.nodes[new].term)
        try Trace.check(cluster.trace, scenario: "check-quorum-deposes-an-isolated-leader")
    }

    @Test func aLaggingFollowerCatchesUpFromASnapshot() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let lagging = (leader + 1) % 3
        cluster.isolate(lagging)
        for i in 0..<20 { _ = cluster.nodes[leader].propose([UInt8(i)]) }
        cluster.settle()
        cluster.tick()
        let applied = cluster.committed[leader].last!.index
        let snapshot = Snapshot(index: applied, term: cluster.nodes[leader].term(at: applied)!, data: [7, 7, 7])
        cluster.nodes[leader].compact(to: snapshot)
        #expect(cluster.nodes[leader].term(at: LogIndex(1)) == nil)  // compacted away
        cluster.cut.removeAll()
        cluster.tick(3)
        #expect(cluster.snapshotsInstalled[lagging] == [snapshot])
        _ = cluster.nodes[leader].propose([99])
        cluster.settle()
        cluster.tick()
        #expect(cluster.committed[lagging].last?.data == [99])
        #expect(cluster.nodes[lagging].commit == cluster.nodes[leader].commit)
    }

    /// A follower catching up on large entries gets them in appends of at most `maxBytesPerAppend`
    /// (one entry larger than that still goes, alone), not in one append of the whole backlog,
    /// which could outgrow the peer transport's frame limit and never arrive.
    @Test func appendsToALaggingFollowerStayWithinTheirByteLimit() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let lagging = (leader + 1) % 3
        cluster.isolate(lagging)
        let big = [UInt8](repeating: 1, count: 400 << 10)
        for _ in 0..<10 { _ = cluster.nodes[leader].propose(big) }
        _ = cluster.nodes[leader].propose([UInt8](repeating: 2, count: 3 << 20))  // alone over the limit
        cluster.settle()
        var appends: [[Int]] = []
        cluster.observe = { m in
            if m.to.rawValue == UInt64(lagging + 1), case .append(_, _, let entries, _) = m.message, !entries.isEmpty {
                appends.append(entries.map(\.data.count))
            }
        }
        cluster.cut.removeAll()
        cluster.tick(5)
        #expect(cluster.committed[lagging].filter { $0.data == big }.count == 10)
        #expect(cluster.committed[lagging].last?.data.count == 3 << 20)
        #expect(appends.count >= 6, "\(appends)")
        for sizes in appends {
            #expect(sizes.count == 1 || sizes.reduce(0, +) <= RaftConfiguration(members: []).maxBytesPerAppend, "\(sizes)")
        }
    }

    @Test func readIndexNeedsAQuorumAndALeader() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let follower = (leader + 1) % 3
        cluster.nodes[follower].readIndex(ReadID(1))
        cluster.settle()
        #expect(cluster.readsFailed[follower] == [ReadID(1)])
        // Cut off from both followers, the leader cannot confirm its leadership: the read waits.
        cluster.isolate(leader)
        cluster.nodes[leader].readIndex(ReadID(2))
        cluster.settle()
        #expect(cluster.readsReady[leader].isEmpty)
        cluster.cut.removeAll()
        cluster.tick()
        #expect(cluster.readsReady[leader] == [ReadID(2)])
        try Trace.check(cluster.trace, scenario: "read-index-needs-a-quorum-and-a-leader")
    }

    @Test func aSingleNodeLeadsAndCommitsAlone() throws {
        var cluster = TestCluster(size: 1)
        #expect(cluster.nodes[0].isLeader, "a cluster of one elects itself when it starts")
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        _ = cluster.propose([5], on: leader)
        cluster.settle()
        #expect(cluster.committed[0].map(\.data).contains([5]))
        try Trace.check(cluster.trace, scenario: "a-single-node-leads-and-commits-alone")
    }

    /// A follower may learn that an entry is committed in the same message that brings it. The entry
    /// is handed out for applying only after the follower reports it synced: a Ready's committed
    /// entries are always on the local disk, so the runtime may apply them while the Ready persists.
    @Test func committedEntriesAreHandedOutOnlyOnceSyncedHere() throws {
        let members = [NodeIndex(1), NodeIndex(2), NodeIndex(3)]
        var follower = Raft(id: NodeIndex(2), configuration: RaftConfiguration(members: members), seed: 1)
        let entry = LogEntry(term: Term(1), index: LogIndex(1), data: [7])
        follower.step(RaftEnvelope(
            from: NodeIndex(1), to: NodeIndex(2), term: Term(1),
            message: .append(prevIndex: .zero, prevTerm: Term(0), entries: [entry], commit: LogIndex(1))))
        let first = follower.ready()
        #expect(first.entries == [entry])
        #expect(first.committed.isEmpty)
        #expect(follower.commit == LogIndex(1))
        follower.persisted(try #require(first.persist))
        #expect(follower.ready().committed == [entry])
    }

    /// A member killed in the middle of a write may come back with a hard state whose commit index
    /// is past its log's end: the index came with entries that never reached its disk (and were never
    /// acknowledged, since replies wait for the write). Seen after kill -9 during snapshot installs
    /// (commit 2645, log to 2632). It starts from its log's end and learns the rest again.
    @Test func aCommitIndexPastTheLogIsCutToTheLog() {
        let members = [NodeIndex(1), NodeIndex(2), NodeIndex(3)]
        let entries = (1...2).map { LogEntry(term: Term(1), index: LogIndex($0), data: [UInt8($0)]) }
        var node = Raft(
            id: NodeIndex(2), configuration: RaftConfiguration(members: members),
            hardState: HardState(term: Term(1), vote: .none, commit: LogIndex(5)), entries: entries, seed: 1)
        #expect(node.commit == LogIndex(2))
        #expect(node.ready().committed == entries)
    }

    /// A Ready needs a sync for entries and for a new term or vote, not for a commit index that
    /// alone moved: that one is written and synced with whatever comes next (etcd-io/raft's MustSync).
    @Test func aMovedCommitIndexAloneNeedsNoSync() throws {
        let members = [NodeIndex(1), NodeIndex(2), NodeIndex(3)]
        var follower = Raft(id: NodeIndex(2), configuration: RaftConfiguration(members: members), seed: 1)
        let entry = LogEntry(term: Term(1), index: LogIndex(1), data: [7])
        follower.step(RaftEnvelope(
            from: NodeIndex(1), to: NodeIndex(2), term: Term(1),
            message: .append(prevIndex: .zero, prevTerm: Term(0), entries: [entry], commit: .zero)))
        let first = follower.ready()
        #expect(first.hardState?.term == Term(1))
        #expect(first.mustSync)
        follower.persisted(try #require(first.persist))

        follower.step(RaftEnvelope(
            from: NodeIndex(1), to: NodeIndex(2), term: Term(1), message: .heartbeat(commit: LogIndex(1), round: 1, context: 0)))
        let second = follower.ready()
        #expect(second.hardState == HardState(term: Term(1), vote: .none, commit: LogIndex(1)))
        #expect(second.entries.isEmpty)
        #expect(!second.mustSync)
        #expect(second.committed == [entry])

        var voter = Raft(id: NodeIndex(3), configuration: RaftConfiguration(members: members), seed: 1)
        voter.step(RaftEnvelope(from: NodeIndex(1), to: NodeIndex(3), term: Term(1), message: .vote(lastIndex: .zero, lastTerm: .zero)))
        let vote = voter.ready()
        #expect(vote.hardState?.vote == NodeIndex(1))
        #expect(vote.entries.isEmpty)
        #expect(vote.mustSync)
    }

    /// Nothing goes out before the state it depends on is durable, and the core, not its shell,
    /// keeps that rule: a vote waits for the vote's persist, an acknowledgement for its entries', and
    /// a message with nothing of its own to persist for the persists before it. A heartbeat reply
    /// needs only the term durable, so it goes while entries are still syncing.
    @Test func messagesWaitInTheCoreForTheStateTheyDependOn() throws {
        let members = [NodeIndex(1), NodeIndex(2), NodeIndex(3)]
        func fromLeader(_ message: RaftMessage) -> RaftEnvelope {
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(3), term: Term(1), message: message)
        }
        var node = Raft(id: NodeIndex(3), configuration: RaftConfiguration(members: members), seed: 1)
        node.step(fromLeader(.vote(lastIndex: .zero, lastTerm: .zero)))
        let vote = node.ready()
        #expect(vote.hardState == HardState(term: Term(1), vote: NodeIndex(1), commit: .zero))
        #expect(vote.messages.isEmpty)
        // The same request again: nothing new to persist, and its answer still waits for the vote's.
        node.step(fromLeader(.vote(lastIndex: .zero, lastTerm: .zero)))
        let again = node.ready()
        #expect(again.persist == nil)
        #expect(again.messages.isEmpty)
        node.persisted(try #require(vote.persist))
        #expect(node.ready().messages.map(\.message) == [.voteReply(granted: true), .voteReply(granted: true)])

        let entry = LogEntry(term: Term(1), index: LogIndex(1), data: [7])
        node.step(fromLeader(.append(prevIndex: .zero, prevTerm: .zero, entries: [entry], commit: .zero)))
        let append = node.ready()
        #expect(append.entries == [entry])
        #expect(append.messages.isEmpty)
        node.step(fromLeader(.heartbeat(commit: .zero, round: 1, context: 0)))
        #expect(node.ready().messages.map(\.message) == [.heartbeatReply(round: 1, syncing: true)])
        node.persisted(try #require(append.persist))
        #expect(
            node.ready().messages.map(\.message)
                == [.appendReply(success: true, index: LogIndex(1), hint: LogIndex(1))])
    }

    /// Raft's Figure 8: a leader must not commit an entry of an earlier term by counting the nodes
    /// that hold it (another leader could still overwrite it); only an entry of its own term on a
    /// majority commits, and everything before it with it.
    @Test func anEntryOfAnEarlierTermIsNotCommittedByCountingReplicas() throws {
        let members = (1...5).map { NodeIndex(UInt64($0)) }
        func from(_ peer: UInt64, _ message: RaftMessage) -> RaftEnvelope {
            RaftEnvelope(from: NodeIndex(peer), to: NodeIndex(1), term: Term(4), message: message)
        }
        let log = [LogEntry(term: Term(1), index: LogIndex(1), data: [1]), LogEntry(term: Term(2), index: LogIndex(2), data: [2])]
        var node = Raft(
            id: NodeIndex(1), configuration: RaftConfiguration(members: members),
            hardState: HardState(term: Term(3), vote: .none, commit: LogIndex(1)), snapshot: .empty, entries: log, seed: 1)
        for _ in 0..<1000 where node.role == .follower { node.tick() }
        for peer: UInt64 in [2, 3] { node.step(from(peer, .preVoteReply(granted: true))) }
        for peer: UInt64 in [2, 3] { node.step(from(peer, .voteReply(granted: true))) }
        #expect(node.isLeader && node.term == Term(4))
        let ready = node.ready()  // its empty entry of term 4, at index 3
        #expect(ready.entries.map(\.term) == [Term(4)])
        node.persisted(try #require(ready.persist))

        // Nodes 2 and 3 hold index 2 (term 2): with the leader, a majority. It stays uncommitted.
        for peer: UInt64 in [2, 3] { node.step(from(peer, .appendReply(success: true, index: LogIndex(2), hint: LogIndex(2)))) }
        #expect(node.commit == LogIndex(1))
        // The leader's own entry reaches them: index 3 commits, and index 2 with it.
        for peer: UInt64 in [2, 3] { node.step(from(peer, .appendReply(success: true, index: LogIndex(3), hint: LogIndex(3)))) }
        #expect(node.commit == LogIndex(3))
    }
}
