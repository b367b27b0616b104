import BatonProtocol
import NIOCore
import Testing

@testable import BatonCore

/// Users, roles and tokens in the state machine (issue 20): authentication is off until the bootstrap
/// entry, then every command and query needs a principal whose token is still listed and whose
/// roles grant what it asks, checked as the entry is applied.
@Suite struct AuthTests {
    let admin = "a".repeated(40)
    let time = Timestamp(milliseconds: 1_000_000)

    /// A machine bootstrapped with `admin`'s token, and the principal that token proves.
    func bootstrapped() -> (StateMachine, Principal) {
        var m = StateMachine()
        _ = m.apply(.bootstrapAuth(TokenHash(of: admin)), at: time)
        return (m, m.auth.authenticate(TokenHash(of: admin))!)
    }

    func run(_ m: inout StateMachine, _ command: Command, by p: Principal?, client: UInt64 = 1, seq: UInt64 = 0) -> Reply? {
        m.apply(.command(ClientID(client), SequenceNumber(seq), command, by: p), at: time).reply
    }

    /// A user `name` with one role granting `permissions`, and its principal.
    func user(_ name: String, _ permissions: [String], in m: inout StateMachine, by root: Principal) -> Principal {
        var token = ""
        for change: Command in [.addUser(name: name), .addRole(name: name + "-role")] {
            #expect(run(&m, change, by: root) == .authUpdated(change.opcode))
        }
        for p in permissions {
            guard case .success(let permission) = Permission.parse(p) else { Issue.record("\(p) does not parse"); continue }
            #expect(run(&m, .grantPermission(role: name + "-role", permission), by: root) == .authUpdated(.roleGrant))
        }
        #expect(run(&m, .grantRole(user: name, role: name + "-role"), by: root) == .authUpdated(.userGrant))
        token = name + "-token-" + "x".repeated(32)
        guard case .tokenAdded(let id) = run(&m, .addToken(user: name, hash: TokenHash(of: token)), by: root) else {
            Issue.record("no token")
            return Principal(user: name, token: TokenID(0))
        }
        #expect(m.auth.authenticate(TokenHash(of: token)) == Principal(user: name, token: id))
        return Principal(user: name, token: id)
    }

    @Test func withoutABootstrapNothingIsChecked() {
        var m = StateMachine()
        #expect(!m.auth.enabled)
        guard case .jobAdded = run(&m, .addJob(JobSpec(type: "billing")), by: nil) else { Issue.record("refused"); return }
        #expect(run(&m, .addUser(name: "early"), by: nil) == .authUpdated(.userAdd))  // users may be made ahead
    }

    @Test func afterTheBootstrapARequestWithoutAPrincipalIsRefusedAndLeavesNoSession() {
        var (m, root) = bootstrapped()
        #expect(m.auth.enabled)
        #expect(errorCode(run(&m, .addJob(JobSpec(type: "t")), by: nil, seq: 1)) == .unauthenticated)
        #expect(m.sessions.isEmpty)
        #expect(m.jobs.isEmpty)
        #expect(errorCode(m.query(.getLock(key: "k"))) == .unauthenticated)
        guard case .jobAdded = run(&m, .addJob(JobSpec(type: "t")), by: root) else { Issue.record("root refused"); return }
        #expect(m.auth.authenticate(TokenHash(of: "b".repeated(40))) == nil)
    }

    /// JOB_COMPLETE_BATCH checks each completion as JOB_COMPLETE would, on its own: a job of a type
    /// the user may not work on is not completed, and answers as a missing one when the user may not
    /// read it either; the user's own jobs in the same batch are completed.
    @Test func aCompleteBatchChecksEachCompletionOnItsOwn() throws {
        var (m, root) = bootstrapped()
        let thumbs = user("thumbs", ["job:add,work:thumbnail"], in: &m, by: root)
        let reader = user("reader", ["job:add,work:report", "job:read:billing"], in: &m, by: root)
        var claims: [ClaimedJob] = []
        for type in ["thumbnail", "billing"] {
            _ = run(&m, .addJob(JobSpec(type: type)), by: root)
            guard case .jobClaimed(let job?) = run(&m, .claimJob(types: [type], worker: "w", wait: 0), by: root) else {
                throw Failure("no claim of \(type)")
            }
            claims.append(job)
        }
        let batch = Command.completeJobs(claims.map { JobCompletion(id: $0.id, token: $0.token) }, claimMax: 0, types: [], worker: "")
        #expect(run(&m, batch, by: reader) == .jobsCompleted([.jobNotFound, .permissionDenied], claimed: []))
        #expect(run(&m, batch, by: thumbs) == .jobsCompleted([nil, .jobNotFound], claimed: []))
        #expect(m.jobs[claims[0].id]?.state == .completed && m.jobs[claims[1].id]?.state == .running)
        #expect(errorCode(run(&m, .completeJobs([], claimMax: 1, types: ["billing"], worker: "w"), by: thumbs)) == .permissionDenied)
    }

    @Test func aUserGetsWhatItsRolesGrantAndNothingElse() {
        var (m, root) = bootstrapped()
        let thumbs = user("thumbs", ["job:add,work,read:thumbnail", "lock:write:thumbs/*"], in: &m, by: root)
        guard case .jobAdded(let id, _) = run(&m, .addJob(JobSpec(type: "thumbnail")), by: thumbs) else {
            Issue.record("add refused")
            return
        }
        let denied = run(&m, .addJob(JobSpec(type: "billing")), by: thumbs)
        #expect(errorCode(denied) == .permissionDenied)
        if case .error(let e)? = denied { #expect(e.message.contains("job:add:billing"), "\(e.message)") }
        #expect(errorCode(run(&m, .claimJob(types: ["thumbnail", "billing"], worker: "w", wait: 0), by: thumbs)) == .permissionDenied)
        guard case .jobClaimed(let job?) = run(&m, .claimJob(types: ["thumbnail"], worker: "w", wait: 0), by: thumbs) else {
            Issue.record("claim refused")
            return
        }
        #expect(run(&m, .completeJob(id, token: job.token, result: []), by: thumbs) == .jobCompleted)
        #expect(errorCode(run(&m, .deleteJob(id), by: thumbs)) == .permissionDenied)  // job admin
        #expect(errorCode(run(&m, .purgeJobs(state: .completed, olderThan: 0), by: thumbs)) == .permissionDenied)
        guard case .lockAcquired(.granted) = run(&m, .acquireLock(key: "thumbs/a", owner: "o", ttl: 1000, wait: 0), by: thumbs) else {
            Issue.record("lock refused")
            return
        }
        #expect(errorCode(run(&m, .acquireLock(key: "thumbsx", owner: "o", ttl: 1000, wait: 0), by: thumbs)) == .permissionDenied)
        #expect(errorCode(run(&m, .forceReleaseLock(key: "thumbs/a"), by: thumbs)) == .permissionDenied)
        #expect(errorCode(run(&m, .addUser(name: "mallory"), by: thumbs)) == .permissionDenied)
        // Reads: the job type is readable, the lock is not (write only), listings need their prefix.
        #expect(errorCode(m.query(.getJob(id), by: thumbs)) == nil)
        #expect(errorCode(m.query(.getLock(key: "thumbs/a"), by: thumbs)) == .permissionDenied)
        #expect(errorCode(m.query(.listJobs(JobFilter(type: "thumbnail")), by: thumbs)) == nil)
        #expect(errorCode(m.query(.listJobs(JobFilter()), by: thumbs)) == .permissionDenied)
        #expect(errorCode(m.query(.listLeases(limit: 0), by: thumbs)) == .permissionDenied)
        #expect(errorCode(m.query(.listAuth, by: thumbs)) == .permissionDenied)
        #expect(errorCode(m.query(.listAuth, by: root)) == nil)
    }

    @Test func patternsNameOneOrAPrefix() {
        let exact = Permission(.lock, .read, "a/b")
        #expect(exact.covers("a/b") && !exact.covers("a/bc") && !exact.coversPrefix("a/b"))
        let prefix = Permission(.lock, .read, "a/*")
        #expect(prefix.covers("a/b") && prefix.covers("a/") && !prefix.covers("b") && !prefix.covers("a"))
        #expect(prefix.coversPrefix("a/") && prefix.coversPrefix("a/x") && !prefix.coversPrefix("a") && !prefix.coversPrefix(""))
        let all = Permission(.job, .admin, "*")
        #expect(all.covers("anything") && all.coversPrefix(""))
        for text in ["job:add,work:thumbnail", "lock:write,read:reports/*", "cluster:admin"] {
            guard case .success(let p) = Permission.parse(text) else { Issue.record("\(text)"); continue }
            #expect(p.description == text)
        }
        for bad in ["job:fly:x", "lock:write", "cluster:admin:x", "disk:read:x", "job::x", "job:add:"] {
            guard case .failure = Permission.parse(bad) else { Issue.record("\(bad) parsed"); continue }
        }
    }

    @Test func aRemovedTokenOrDeletedUserIsRefusedFromItsEntryOn() {
        var (m, root) = bootstrapped()
        let w = user("w", ["job:add:*"], in: &m, by: root)
        guard case .jobAdded = run(&m, .addJob(JobSpec(type: "t")), by: w) else { Issue.record("refused"); return }
        #expect(run(&m, .removeToken(user: "w", id: w.token), by: root) == .authUpdated(.tokenRemove))
        #expect(errorCode(run(&m, .addJob(JobSpec(type: "t")), by: w)) == .unauthenticated)
        let again = user("v", ["job:add:*"], in: &m, by: root)
        #expect(run(&m, .deleteUser(name: "v"), by: root) == .authUpdated(.userDelete))
        #expect(errorCode(run(&m, .addJob(JobSpec(type: "t")), by: again)) == .unauthenticated)
        #expect(m.auth.owners[again.token] == nil)
    }

    @Test func deletingARoleTakesItFromItsUsers() {
        var (m, root) = bootstrapped()
        let w = user("w", ["job:add:*"], in: &m, by: root)
        #expect(run(&m, .deleteRole(name: "w-role"), by: root) == .authUpdated(.roleDelete))
        #expect(m.auth.users["w"]?.roles == [])
        #expect(errorCode(run(&m, .addJob(JobSpec(type: "t")), by: w)) == .permissionDenied)
    }

    @Test func revokingTakesOnlyTheNamedActions() {
        var (m, root) = bootstrapped()
        let w = user("w", ["job:add,read:t"], in: &m, by: root)
        #expect(run(&m, .revokePermission(role: "w-role", Permission(.job, .write, "t")), by: root) == .authUpdated(.roleRevoke))
        #expect(errorCode(run(&m, .addJob(JobSpec(type: "t")), by: w)) == .permissionDenied)
        #expect(errorCode(m.query(.listJobs(JobFilter(type: "t")), by: w)) == nil)
        #expect(errorCode(run(&m, .revokePermission(role: "w-role", Permission(.job, .write, "t")), by: root)) == .invalidArgument)
    }

    @Test func theRootRoleIsBuiltIn() {
        var (m, root) = bootstrapped()
        #expect(errorCode(run(&m, .deleteRole(name: "root"), by: root)) == .invalidArgument)
        #expect(errorCode(run(&m, .grantPermission(role: "root", Permission(.job, .read, "x")), by: root)) == .invalidArgument)
        #expect(errorCode(run(&m, .addRole(name: "root"), by: root)) == .invalidArgument)
        #expect(run(&m, .addUser(name: "ops"), by: root) == .authUpdated(.userAdd))
        #expect(run(&m, .grantRole(user: "ops", role: "root"), by: root) == .authUpdated(.userGrant))
        #expect(errorCode(run(&m, .grantRole(user: "ops", role: "nope"), by: root)) == .invalidArgument)
        #expect(errorCode(run(&m, .addUser(name: "ops"), by: root)) == .invalidArgument)
    }

    /// A new admin token file (the way back in when the admin token is lost) replaces the old one;
    /// the same one again changes nothing.
    @Test func aNewBootstrapTokenReplacesTheOld() {
        var (m, old) = bootstrapped()
        let before = m.snapshot()
        _ = m.apply(.bootstrapAuth(TokenHash(of: admin)), at: time)
        #expect(m.snapshot() == before)
        let fresh = "c".repeated(40)
        _ = m.apply(.bootstrapAuth(TokenHash(of: fresh)), at: time)
        #expect(m.auth.authenticate(TokenHash(of: admin)) == nil)
        #expect(m.auth.authenticate(TokenHash(of: fresh))?.user == "root")
        #expect(errorCode(run(&m, .addUser(name: "x"), by: old)) == .unauthenticated)
    }

    @Test func theAuthStoreSurvivesASnapshotAndOlderFormatsLeaveItOut() throws {
        var (m, root) = bootstrapped()
        let w = user("w", ["job:add,work:thumb*", "lock:read:*"], in: &m, by: root)
        let restored = try StateMachine(restoring: m.snapshot())
        #expect(restored.snapshot() == m.snapshot())
        #expect(restored.auth.authenticate(TokenHash(of: "w-token-" + "x".repeated(32))) == w)
        #expect(restored.auth.listing == m.auth.listing)
        let old = try StateMachine.snapshot(Array(m.snapshot().readableBytesView), readableBy: 2)
        #expect(old[5] == 2)
        #expect(try !StateMachine(restoring: ByteBuffer(bytes: old)).auth.enabled)
    }

    @Test func entriesCarryThePrincipal() throws {
        let p = Principal(user: "w", token: TokenID(0xABCD))
        let inputs: [StateMachineInput] = [
            .command(ClientID(1), SequenceNumber(2), .addJob(JobSpec(type: "t")), by: p),
            .command(ClientID(1), SequenceNumber(2), .grantPermission(role: "r", Permission(.lock, [.read, .write], "a*"))),
            .command(ClientID(1), SequenceNumber(3), .addToken(user: "u", hash: TokenHash(of: "tok"))),
            .bootstrapAuth(TokenHash(of: "tok")),
        ]
        for input in inputs {
            let timed = TimedInput(input, at: time)
            #expect(try TimedInput.decode(timed.encode()) == timed)
        }
        // Without a principal the entry is laid out as before (kind 1), for older members.
        #expect(TimedInput(.command(ClientID(1), SequenceNumber(2), .addJob(JobSpec(type: "t"))), at: time).encode().first == 1)
    }

    @Test func hashesCompareWhole() {
        let a = TokenHash(of: "one")
        var b = a
        b.words.3 ^= 1
        #expect(a.id == b.id && !a.matches(b) && a.matches(TokenHash(bytes: a.bytes)!))
        #expect(TokenHash.newToken().count == 64 && TokenHash.newToken() != TokenHash.newToken())
        // SHA-256("abc"), from FIPS 180-2.
        #expect(TokenHash(of: "abc").id == TokenID(0xba78_16bf_8f01_cfea))
    }
}

extension String {
    func repeated(_ n: Int) -> String { String(repeating: self, count: n) }
}
