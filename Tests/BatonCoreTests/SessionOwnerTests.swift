import BatonProtocol
import NIOCore
import Testing

@testable import BatonCore

/// Issue 33 in the state machine: a session belongs to its user (item 2), quotas per user with a
/// share kept for admins (item 3), waits answered by the entry that revokes them (item 4), and root
/// cannot lock itself out (item 5).
@Suite struct SessionOwnerTests {
    let auth = AuthTests()

    @Test func anotherUserCannotUseASessionOrReadItsAnswers() throws {
        var (m, root) = auth.bootstrapped()
        let a = auth.user("a", ["lock:write:a/*"], in: &m, by: root)
        let a2 = auth.user("a2", ["lock:write:a/*"], in: &m, by: root)
        let mallory = auth.user("m", ["lock:write:m/*"], in: &m, by: root)
        let grant = auth.run(&m, .acquireLock(key: "a/x", owner: "a", ttl: Milliseconds(60_000), wait: .zero), by: a, client: 42, seq: 1)
        guard case .lockAcquired(.granted)? = grant else { Issue.record("a's acquire: \(String(describing: grant))"); return }
        // Mallory's commands under a's client id: refused, and they use up nothing of a's.
        let taken = auth.run(&m, .acquireLock(key: "m/y", owner: "m", ttl: Milliseconds(60_000), wait: .zero), by: mallory, client: 42, seq: 2)
        #expect(errorCode(taken) == .permissionDenied)
        for seq in UInt64(1000)..<1300 {
            _ = auth.run(&m, .acquireLock(key: "m/\(seq)", owner: "m", ttl: Milliseconds(1000), wait: .zero), by: mallory, client: 42, seq: seq)
        }
        let next = auth.run(&m, .acquireLock(key: "a/z", owner: "a", ttl: Milliseconds(60_000), wait: .zero), by: a, client: 42, seq: 2)
        guard case .lockAcquired(.granted)? = next else { Issue.record("a's own next command: \(String(describing: next))"); return }
        // A user with a's permissions replaying a's first command gets no remembered answer.
        let replay = auth.run(&m, .acquireLock(key: "a/x", owner: "a", ttl: Milliseconds(60_000), wait: .zero), by: a2, client: 42, seq: 1)
        #expect(errorCode(replay) == .permissionDenied, "\(String(describing: replay))")
        // The owner survives a snapshot.
        let restored = try StateMachine(restoring: m.snapshot())
        #expect(restored.sessions[ClientID(42)]?.principal == a)
        #expect(restored.sessionsPerUser == m.sessionsPerUser)
    }

    @Test func oneUserCannotTakeEverySessionAndAdminsKeepAShare() {
        var configuration = StateMachine.Configuration()
        configuration.maxClients = 20
        var m = StateMachine(configuration: configuration)
        _ = m.apply(.bootstrapAuth(TokenHash(of: auth.admin)), at: auth.time)
        let root = m.auth.authenticate(TokenHash(of: auth.admin))!
        let u = auth.user("u", ["job:add:t"], in: &m, by: root)
        let v = auth.user("v", ["job:add:t"], in: &m, by: root)
        var refusedAt: UInt64?
        for client in UInt64(100)..<125 where refusedAt == nil {
            if errorCode(auth.run(&m, .addJob(JobSpec(type: "t")), by: u, client: client, seq: 1)) == .quotaExceeded { refusedAt = client }
        }
        #expect(refusedAt == 105, "a quarter of maxClients (5) per user")
        for client in UInt64(200)..<230 { _ = auth.run(&m, .addJob(JobSpec(type: "t")), by: v, client: client, seq: 1) }
        #expect(m.sessions.count == 10)
        guard case .jobAdded? = auth.run(&m, .addJob(JobSpec(type: "t")), by: root, client: 7, seq: 1) else {
            Issue.record("the admin's new client was refused")
            return
        }
    }

    @Test func usersWithoutAdminLeaveATenthForAdmins() {
        var configuration = StateMachine.Configuration()
        configuration.maxClients = 20
        configuration.maxClientsPerUser = 100
        var m = StateMachine(configuration: configuration)
        _ = m.apply(.bootstrapAuth(TokenHash(of: auth.admin)), at: auth.time)
        let root = m.auth.authenticate(TokenHash(of: auth.admin))!
        let u = auth.user("u", ["job:add:t"], in: &m, by: root)
        for client in UInt64(100)..<130 { _ = auth.run(&m, .addJob(JobSpec(type: "t")), by: u, client: client, seq: 1) }
        #expect(m.sessions.count == 18)
        for client in UInt64(1)...2 {
            guard case .jobAdded? = auth.run(&m, .addJob(JobSpec(type: "t")), by: root, client: client, seq: 1) else {
                Issue.record("admin client \(client) was refused")
                return
            }
        }
        #expect(errorCode(auth.run(&m, .addJob(JobSpec(type: "t")), by: root, client: 3, seq: 1)) == .quotaExceeded)
    }

    @Test func aWaitIsAnsweredByTheEntryThatRevokesIt() {
        var (m, root) = auth.bootstrapped()
        let w = auth.user("w", ["lock:write:w/*", "job:work:jt"], in: &m, by: root)
        let held = auth.run(&m, .acquireLock(key: "w/k", owner: "root", ttl: Milliseconds(60_000), wait: .zero), by: root, client: 1, seq: 1)
        guard case .lockAcquired(.granted(let token, _, _))? = held else { Issue.record("\(String(describing: held))"); return }
        #expect(auth.run(&m, .acquireLock(key: "w/k", owner: "w", ttl: Milliseconds(60_000), wait: Milliseconds(60_000)), by: w, client: 2, seq: 1) == nil)
        #expect(auth.run(&m, .claimJob(types: ["jt"], worker: "w", wait: Milliseconds(60_000)), by: w, client: 3, seq: 1) == nil)
        let revoked = m.apply(.command(ClientID(1), SequenceNumber(2), .removeToken(user: "w", id: w.token), by: root), at: auth.time)
        #expect(revoked.completions.count == 2)
        #expect(revoked.completions.allSatisfy { errorCode($0.reply) == .unauthenticated })
        // The lock goes back to nobody, the job to the queue.
        _ = auth.run(&m, .releaseLock(key: "w/k", token: token), by: root, client: 1, seq: 3)
        guard case .lock(let info) = m.query(.getLock(key: "w/k"), by: root) else { Issue.record("getLock"); return }
        #expect(info == nil)
        _ = auth.run(&m, .addJob(JobSpec(type: "jt")), by: root, client: 1, seq: 4)
        #expect(m.summary().jobsQueued == 1)
    }

    @Test func rootCannotLockItselfOut() {
        var (m, root) = auth.bootstrapped()
        for change: Command in [
            .revokeRole(user: "root", role: "root"), .deleteUser(name: "root"), .removeToken(user: "root", id: root.token),
        ] {
            let reply = auth.run(&m, change, by: root)
            #expect(errorCode(reply) == .invalidArgument, "\(change)")
        }
        guard case .jobAdded? = auth.run(&m, .addJob(JobSpec(type: "t")), by: root) else { Issue.record("root refused"); return }
    }
}
