import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import BatonServer

/// Three real `baton serve` processes on loopback, a cluster. The leader is killed with SIGKILL again
/// and again under load from clients that know all three endpoints; every acknowledged operation
/// must survive, and the clients must carry on after each failover.
@Suite(.heavy, .timeLimit(.minutes(3))) struct ClusterTests {
    /// PROTOCOL.md §6: a follower's NOT_LEADER names the leader in a field of its own on a connection
    /// of version 3, and only in its message on one of version 2, whose body keeps the version-2
    /// layout (the raw connection decodes it strictly, every byte used). Issue 19, item 6. And AUTH of
    /// a token it does not know is sent to the leader too (issue 35, item 3).
    /// A batch is one log entry that every member applies alike (issue 38): 200 jobs added in two
    /// batches, 50 claimed in one, and the members' summaries agree.
    @Test func membersApplyBatchesAlike() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        let processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let client = TestCluster.client(members, name: "batches")
        // Every member must have agreed peer protocol 9 with the leader first (the complete batch's).
        try await eventually("the leader takes a batch") { () async throws -> Bool in
            do {
                _ = try await client.addJobs((0..<100).map { JobSpec(type: "b", payload: [UInt8($0)]) })
                return true
            } catch BatonClientError.server(let e) where e.code == .unknownOpcode {
                return false
            }
        }
        _ = try await client.addJobs((100..<200).map { JobSpec(type: "b", payload: [UInt8($0 % 256)]) })
        let claimed = try await client.claimJobs(types: ["b"], max: 50)
        #expect(claimed.count == 50)
        let done = try await client.completeJobs(
            claimed.prefix(20).map { JobCompletion(id: $0.id, token: $0.token) }, thenClaim: 10, types: ["b"])
        #expect(done.outcomes.allSatisfy { $0 == nil } && done.claimed.count == 10)
        try await TestCluster.waitUntilSettled(members, lag: 0)
        let statuses = await TestCluster.statuses(members).compactMap { $0 }
        #expect(statuses.count == 3)
        #expect(
            statuses.allSatisfy { $0.summary.jobsQueued == 140 && $0.summary.jobsRunning == 40 && $0.summary.jobsCompleted == 20 },
            "\(statuses.map(\.summary))")
        await client.shutdown()
    }

    @Test func aFollowerNamesTheLeaderInAFieldOfItsOwn() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        let processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let release = Command.releaseLock(key: "k", token: FencingToken(1))
        // An election, then a follower that heard of it.
        var sequence: UInt64 = 0
        try await eventually("a follower names the leader") { () async throws -> Bool in
            guard let leader = await TestCluster.leader(members) else { return false }
            let follower = members[(leader + 1) % 3]
            let v3 = try await RawConnection(port: follower.port)
            try await v3.hello(client: 77)
            sequence += 1
            try await v3.send(.command(SequenceNumber(sequence), release), id: 2)
            let answer = try await v3.nextReply().reply
            await v3.close()
            guard case .error(let e) = answer, e.code == .notLeader else {
                return false  // the leader changed meanwhile
            }
            #expect(await v3.version == batonProtocolVersion)
            guard e.leader == "127.0.0.1:\(members[leader].port)" else {
                #expect(e.leader != nil, "no leader field at version 3: \(e)")
                return false  // not heard from the leader yet (empty), or another took over
            }

            let v2 = try await RawConnection(port: follower.port)
            try await v2.hello(client: 78, version: 2)
            #expect(await v2.version == 2)
            sequence += 1
            try await v2.send(.command(SequenceNumber(sequence), release), id: 2)
            let old = try await v2.nextReply().reply
            await v2.close()
            guard case .error(let e2) = old, e2.code == .notLeader else {
                return false
            }
            #expect(e2.leader == nil)
            #expect(e2.leaderHint == "127.0.0.1:\(members[leader].port)", "\(e2)")

            // AUTH (issue 35, item 3): a follower's copy of the users may lag, so it does not refuse a
            // token it does not know; it names the leader, which does. Before: UNAUTHENTICATED
            // 'no user holds this token' from the follower.
            let auth = try await RawConnection(port: follower.port)
            try await auth.hello(client: 79)
            try await auth.send(.auth(token: "no-such-token"), id: 2)
            let refused = try await auth.nextReply().reply
            await auth.close()
            guard case .error(let e3) = refused, e3.code == .notLeader else {
                Issue.record("a follower answered AUTH of an unknown token with \(refused)")
                return true
            }
            #expect(e3.leader == "127.0.0.1:\(members[leader].port)", "\(e3)")
            let atLeader = try await RawConnection(port: members[leader].port)
            try await atLeader.hello(client: 80)
            try await atLeader.send(.auth(token: "no-such-token"), id: 2)
            let answer3 = try await atLeader.nextReply().reply
            await atLeader.close()
            #expect(errorCode(answer3) == .unauthenticated || errorCode(answer3) == .notLeader, "\(answer3)")
            return true
        }
    }

    /// Over HTTP/2 a follower names the leader's HTTP/2 address in the `baton-leader` header
    /// (PROTOCOL.md §12): a client over HTTP/2 that knows only a follower follows it to the leader.
    @Test func anHTTP2ClientFollowsTheLeaderHeader() async throws {
        let members = try await TestCluster.writeConfigs(http2: true)
        defer { TestCluster.remove(members) }
        let processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // An election, then a follower that heard of it.
        try await eventually("an HTTP/2 client got through a follower") { () async -> Bool in
            guard let leader = await TestCluster.leader(members), let port = members[(leader + 1) % 3].http2Port else { return false }
            var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "h2-follower")
            c.transport = .http2
            c.retryTimeout = .seconds(2)
            let client = BatonClient(configuration: c)
            let status = try? await client.nodeStatus()  // NODE_STATUS is answered by any member
            let added = try? await client.addJob(JobSpec(type: "via-follower"))
            await client.shutdown()
            guard status?.role == .follower, let added else { return false }  // the leader changed meanwhile
            let checker = BatonClient(configuration: BatonClient.Configuration(endpoints: ["127.0.0.1:\(members[leader].port)"], name: "check"))
            let job = try? await checker.getJob(added.id)
            await checker.shutdown()
            guard let job else { return false }  // another leader took over
            #expect(job.type == "via-follower")
            return true
        }
    }

    @Test func killingTheLeaderLosesNothingAcknowledged() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        var processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        let acked = NIOLockedValueBox(Acknowledged())
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<3 {
                    group.addTask {
                        await BatonServerTests.load(
                            port: 0, round: 0, worker: worker, acked: acked, endpoints: endpoints, retryTimeout: .seconds(10))
                    }
                }
            }
        }
        var kills = 0
        for round in 0..<10 {
            // Let the load run, then kill whoever leads.
            let before = acked.withLockedValue { $0.jobs.count }
            do {
                try await eventually("round \(round): the clients make progress", every: .milliseconds(20)) {
                    acked.withLockedValue { $0.jobs.count } >= before + 20
                }
            } catch {
                Issue.record("\(before) jobs acknowledged; the workers stopped: \(acked.withLockedValue { $0.stops })")
                load.cancel()
                return
            }
            guard let victim = await TestCluster.leader(members) else {
                Issue.record("round \(round): no member says it leads")
                continue
            }
            kill(processes[victim].processIdentifier, SIGKILL)
            processes[victim].waitUntilExit()
            kills += 1
            try await Task.sleep(for: .milliseconds(300))
            processes[victim] = try TestCluster.launch(members[victim])
        }
        // The clients carried on after the last failover too.
        let before = acked.withLockedValue { $0.jobs.count }
        do {
            try await eventually("progress after the last failover", every: .milliseconds(20)) {
                acked.withLockedValue { $0.jobs.count } >= before + 20
            }
        } catch {
            Issue.record("the workers stopped: \(acked.withLockedValue { $0.stops })")
        }
        load.cancel()
        await load.value
        #expect(kills == 10)
        var c = BatonClient.Configuration(endpoints: endpoints, name: "checker")
        c.retryTimeout = .seconds(10)
        let checker = BatonClient(configuration: c)
        try await acked.withLockedValue { $0 }.verify(with: checker, round: 99)
        await checker.shutdown()

        // batonctl status asks every member: three rows, one leader, everyone in the same term. A
        // member restarted a moment ago may not have heard from the leader yet: wait until it has.
        let status = ["status", "--output", "json", "--endpoints", endpoints.joined(separator: ",")]
        let (r, nodes) = try await eventually("batonctl status shows every member in one term, none lagging", every: .milliseconds(100)) {
            let r = try await batonctl(status, port: 0)
            let nodes = (try? json(r.out) as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
            let settled = Set(nodes.compactMap { $0["term"] as? Int }).count == 1 && nodes.allSatisfy { $0["lag"] as? Int == 0 }
            return r.status == 0 && settled ? (r, nodes) : nil
        }
        #expect(nodes.count == 3)
        #expect(nodes.filter { $0["leader"] as? Bool == true }.count == 1, "\(r.out)")
        #expect(Set(nodes.compactMap { $0["role"] as? String }).isSubset(of: ["leader", "follower"]), "\(r.out)")
        #expect(Set(nodes.compactMap { $0["term"] as? Int }).count == 1, "\(r.out)")
    }

    /// A lease nobody renews is not cut short when the leader dies near its end, and it does end:
    /// the lock is free again after the failover. How much a failover may add (the leaderless gap,
    /// never a fresh TTL) is a timing property, checked in simulated real time by
    /// `NodeSimulation` ("a failover added … more than the leaderless gap"), not here on a machine
    /// that may be loaded. And `batonctl leases` counts the remaining time in the cluster's time.
    @Test func aFailoverNearALeasesEndDoesNotRenewIt() async throws {
        let members = try await TestCluster.writeConfigs()
        defer { TestCluster.remove(members) }
        let processes = try members.map(TestCluster.launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let endpoints = members.map { "127.0.0.1:\($0.port)" }
        let victim = try await TestCluster.waitForLeader(members)
        var c = BatonClient.Configuration(endpoints: endpoints, name: "holder")
        c.retryTimeout = .seconds(10)
        let holder = BatonClient(configuration: c)
        let sent = ContinuousClock.now
        guard case .granted = try await holder.acquireLock("idle", ttl: .seconds(4)) else {
            Issue.record("the lock was not granted")
            return
        }
        await holder.shutdown()  // and never renews

        let leases = try await batonctl(["leases", "list", "--output", "json", "--endpoints", endpoints.joined(separator: ",")], port: 0)
        let remaining = ((try? json(leases.out)) as? [[String: Any]])?.first?["expiresInMs"] as? Int
        #expect(remaining.map { (1...4_000).contains($0) } == true, "\(leases.out) \(leases.err)")

        try await Task.sleep(until: sent + .seconds(3))
        kill(processes[victim].processIdentifier, SIGKILL)
        processes[victim].waitUntilExit()

        var t = BatonClient.Configuration(endpoints: endpoints, name: "taker")
        t.retryTimeout = .seconds(10)
        let taker = BatonClient(configuration: t)
        let freeAfter: Duration? = try await eventually("the lock is free again after the failover") {
            guard case .granted = try await taker.acquireLock("idle", ttl: .seconds(4)) else { return nil }
            return ContinuousClock.now - sent
        }
        await taker.shutdown()
        // Never before its TTL, counted from the send: a slow machine can only make it later.
        #expect(freeAfter.map { $0 >= .seconds(4) } == true, "free after \(String(describing: freeAfter))")
    }

    /// A wait whose client went away with its leader is withdrawn by the new leader once the client
    /// has not connected for `absentClientGraceMilliseconds`; the lock then goes to a live client
    /// instead of being granted to nobody and held for a TTL. In-process members; the leader stops
    /// (a graceful stop leaves the wait in the log too, as a kill does).
    @Test func aNewLeaderWithdrawsTheWaitsOfClientsThatDoNotReconnect() async throws {
        var ports: [(client: Int, raft: Int)] = []
        for _ in 0..<3 { ports.append((try await freePort(), try await freePort())) }
        let cluster = ports.enumerated().map { i, p in
            NodeConfiguration.ClusterMember(nodeID: "n\(i + 1)", host: "127.0.0.1", port: p.client, raftPort: p.raft)
        }
        let dirs = (0..<3).map { _ in temporaryDataDirectory() }
        defer { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
        var nodes: [TestNode?] = []
        for i in 0..<3 {
            nodes.append(try await TestNode.start { c in
                c.nodeID = "n\(i + 1)"
                c.port = ports[i].client
                c.dataDirectory = dirs[i]
                c.cluster = cluster
                c.absentClientGraceMilliseconds = 300
            })
        }
        func stopAll() async { for n in nodes { try? await n?.stop() } }
        let endpoints = ports.map { "127.0.0.1:\($0.client)" }
        func client(_ name: String) -> BatonClient {
            var c = BatonClient.Configuration(endpoints: endpoints, name: name)
            c.retryTimeout = .seconds(10)
            return BatonClient(configuration: c)
        }
        let holder = client("holder")
        guard case .granted(let token, _, _) = try await holder.acquireLock("k", ttl: .seconds(60)) else {
            Issue.record("the holder got no lock")
            return await stopAll()
        }
        // A raw client waits in line at the leader, then vanishes with it.
        let leader = try await holder.nodeStatus()
        guard leader.role == .leader, let index = cluster.firstIndex(where: { $0.nodeID == leader.nodeID }) else {
            Issue.record("the holder's member \(leader.nodeID) does not lead")
            return await stopAll()
        }
        let raw = try await RawConnection(port: ports[index].client)
        try await raw.hello(client: 4242)
        try await raw.send(.command(SequenceNumber(1), .acquireLock(key: "k", owner: "gone", ttl: Milliseconds(60_000), wait: Milliseconds(600_000))), id: 2)
        try await holder.waitForWaiters(1, on: "k")
        try await nodes[index]?.stop()
        nodes[index] = nil
        await raw.close()

        // The new leader keeps the wait for the grace, then withdraws it: wait for the line to empty.
        do {
            try await eventually("the new leader withdraws the absent client's wait", every: .milliseconds(20)) {
                try await holder.getLock("k")?.waiters.isEmpty ?? true
            }
        } catch {
            await stopAll()
            throw error
        }
        try await holder.releaseLock("k", token: token)
        let taker = client("taker")
        let result = try await taker.acquireLock("k", ttl: .seconds(5))
        #expect({ if case .granted = result { true } else { false } }(), "\(result)")
        await holder.shutdown()
        await taker.shutdown()
        await stopAll()
    }

    /// A member that knows no leader names none in its NOT_LEADER; the client then tries its next
    /// endpoint instead of taking the message for an address. The member here is alone in a cluster
    /// of three, so it can never elect a leader.
    @Test func aClientPassesOverAMemberThatKnowsNoLeader() async throws {
        let dir = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (port, raftPort) = (try await freePort(), try await freePort())
        let lonely = try await TestNode.start { c in
            c.nodeID = "n1"
            c.port = port
            c.dataDirectory = dir
            c.cluster = [
                .init(nodeID: "n1", host: "127.0.0.1", port: port, raftPort: raftPort),
                .init(nodeID: "n2", host: "127.0.0.1", port: 1, raftPort: 1),
                .init(nodeID: "n3", host: "127.0.0.1", port: 1, raftPort: 1),
            ]
        }
        try await withNode { single in
            var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)", "127.0.0.1:\(single.port)"], name: "passer")
            c.retryTimeout = .seconds(3)
            let client = BatonClient(configuration: c)
            let result = await Task { try await client.acquireLock("k", ttl: .seconds(10)) }.result
            await client.shutdown()
            guard case .success(.granted) = result else {
                Issue.record("the lock was not granted: \(result)")
                return
            }
        }
        try await lonely.stop()
    }
}
