import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import Testing

/// One message of every kind, with fixed values. Their frames are checked in under Protocol/golden/;
/// PROTOCOL.md's worked examples are copied from those files.
enum GoldenMessage {
    case request(Request)
    /// A reply as protocol `version` lays it out.
    case reply(Reply, version: UInt16 = batonProtocolVersion)
}

let goldenRequestID = RequestID(0x0000_0007)
/// The bearer token of the AUTH and TOKEN_ADD examples (its SHA-256 is what TOKEN_ADD carries).
let goldenToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

let goldenFrames: [(name: String, message: GoldenMessage)] = {
    let lock = LockInfo(
        key: "reports/daily", owner: "worker-a", clientID: ClientID(0x1122_3344_5566_7788), token: FencingToken(42),
        grantedAt: Timestamp(milliseconds: 1_700_000_000_000), expiresAt: Timestamp(milliseconds: 1_700_000_010_000),
        waiters: [LockWaiter(owner: "worker-b", clientID: ClientID(2), deadline: Timestamp(milliseconds: 1_700_000_030_000))])
    let claimed = ClaimedJob(
        id: JobID(9), type: "image.analyse", payload: Array("cat.png".utf8), attempt: 1, maxAttempts: 5,
        token: FencingToken(43), timeout: 60_000, leaseExpiresAt: Timestamp(milliseconds: 1_700_000_060_000),
        leaseLeft: 60_000)
    let info = JobInfo(
        id: JobID(9), type: "image.analyse", state: .running, priority: 0, attempts: 1, maxAttempts: 5, timeout: 60_000,
        backoff: 1000, uniqueKey: "cat.png", createdAt: Timestamp(milliseconds: 1_700_000_000_000),
        runAt: Timestamp(milliseconds: 1_700_000_000_000), leaseExpiresAt: Timestamp(milliseconds: 1_700_000_060_000),
        worker: "worker-a", lastError: "", payload: Array("cat.png".utf8), result: [])
    let seq = SequenceNumber(3)
    let schedule = ScheduleSpec(
        name: "scan-uploads", every: 60_000, jitter: 5_000,
        job: JobSpec(type: "image.scan", payload: Array("uploads/".utf8), priority: 1, maxAttempts: 3, timeout: 30_000, backoff: 1000),
        overlap: .skip, catchUp: 300_000)
    let nightly = ScheduleSpec(name: "nightly-report", cron: "0 3 * * *", job: JobSpec(type: "report"), overlap: .bufferOne)
    let scheduleInfo = ScheduleInfo(
        spec: schedule, nextSlot: Timestamp(milliseconds: 1_700_000_040_000), lastSlot: Timestamp(milliseconds: 1_699_999_980_000),
        lastFireAt: Timestamp(milliseconds: 1_699_999_980_004), lastJob: JobID(9), fires: 12, skips: 1, misses: 2,
        createdAt: Timestamp(milliseconds: 1_699_999_000_000))
    return [
        ("hello.request", .request(.hello(Hello(clientID: ClientID(0x1122_3344_5566_7788), clientName: "worker-a")))),
        ("hello.reply", .reply(.hello(HelloReply(
            version: 5, nodeID: "baton-1", serverTime: Timestamp(milliseconds: 1_700_000_000_000), maxFrameSize: 1 << 20,
            maxKeyLength: 256, minTTL: 100, maxTTL: 86_400_000, idleTimeout: 300_000)))),
        ("ping.request", .request(.ping)),
        ("ping.reply", .reply(.pong(serverTime: Timestamp(milliseconds: 1_700_000_000_000)))),
        ("lock-acquire.request", .request(.command(seq, .acquireLock(key: "reports/daily", owner: "worker-a", ttl: 10_000, wait: 0)))),
        ("lock-acquire.reply-granted", .reply(.lockAcquired(.granted(token: FencingToken(42), expiresAt: Timestamp(milliseconds: 1_700_000_010_000), leaseLeft: 10_000)))),
        ("lock-acquire.reply-busy", .reply(.lockAcquired(.busy(holder: "worker-a", expiresAt: Timestamp(milliseconds: 1_700_000_010_000))))),
        ("lock-renew.request", .request(.command(seq, .renewLock(key: "reports/daily", token: FencingToken(42), ttl: 10_000)))),
        ("lock-renew.reply", .reply(.lockRenewed(expiresAt: Timestamp(milliseconds: 1_700_000_013_000), leaseLeft: 10_000))),
        ("lock-release.request", .request(.command(seq, .releaseLock(key: "reports/daily", token: FencingToken(42))))),
        ("lock-release.reply", .reply(.lockReleased)),
        ("lock-get.request", .request(.query(.getLock(key: "reports/daily")))),
        ("lock-get.reply", .reply(.lock(lock))),
        ("lock-get.reply-none", .reply(.lock(nil))),
        ("lock-list.request", .request(.query(.listLocks(prefix: "reports/", after: "", limit: 100)))),
        ("lock-list.reply", .reply(.locks([lock]))),
        ("job-add.request", .request(.command(seq, .addJob(JobSpec(
            type: "image.analyse", payload: Array("cat.png".utf8), priority: 0, delay: 0, maxAttempts: 5, timeout: 60_000,
            backoff: 1000, uniqueKey: "cat.png"))))),
        ("job-add.reply", .reply(.jobAdded(JobID(9), created: true))),
        ("job-claim.request", .request(.command(seq, .claimJob(types: ["image.analyse"], worker: "worker-a", wait: 20_000)))),
        ("job-claim.reply", .reply(.jobClaimed(claimed))),
        ("job-claim.reply-none", .reply(.jobClaimed(nil))),
        ("job-claim-id.request", .request(.command(seq, .claimJobByID(JobID(9), worker: "worker-a")))),
        ("job-claim-id.reply", .reply(.jobClaimedByID(claimed))),
        ("job-add-batch.request", .request(.command(seq, .addJobs([
            JobSpec(
                type: "image.analyse", payload: Array("cat.png".utf8), priority: 0, delay: 0, maxAttempts: 5, timeout: 60_000,
                backoff: 1000, uniqueKey: "cat.png"),
            JobSpec(type: "image.analyse", payload: Array("dog.png".utf8), priority: 2),
        ])))),
        ("job-add-batch.reply", .reply(.jobsAdded([AddedJob(id: JobID(9), created: true), AddedJob(id: JobID(10), created: true)]))),
        ("job-claim-batch.request", .request(.command(seq, .claimJobs(types: ["image.analyse"], worker: "worker-a", max: 2)))),
        ("job-claim-batch.reply", .reply(.jobsClaimed([claimed]))),
        ("job-claim-batch.reply-none", .reply(.jobsClaimed([]))),
        ("job-complete-batch.request", .request(.command(seq, .completeJobs(
            [JobCompletion(id: JobID(9), token: FencingToken(43), result: Array("ok".utf8)), JobCompletion(id: JobID(8), token: FencingToken(40))],
            claimMax: 2, types: ["image.analyse"], worker: "worker-a")))),
        ("job-complete-batch.reply", .reply(.jobsCompleted([nil, .claimLost], claimed: [claimed]))),
        ("job-extend.request", .request(.command(seq, .extendJob(JobID(9), token: FencingToken(43), ttl: 0)))),
        ("job-extend.reply", .reply(.jobExtended(leaseExpiresAt: Timestamp(milliseconds: 1_700_000_080_000), leaseLeft: 60_000))),
        ("job-complete.request", .request(.command(seq, .completeJob(JobID(9), token: FencingToken(43), result: Array("ok".utf8))))),
        ("job-complete.reply", .reply(.jobCompleted)),
        ("job-fail.request", .request(.command(seq, .failJob(JobID(9), token: FencingToken(43), error: "decoder crashed")))),
        ("job-fail.reply", .reply(.jobFailed(state: .queued, retryAt: Timestamp(milliseconds: 1_700_000_001_100)))),
        ("job-abort.request", .request(.command(seq, .abortJob(JobID(9), token: FencingToken(43))))),
        ("job-abort.reply", .reply(.jobAborted)),
        ("job-get.request", .request(.query(.getJob(JobID(9))))),
        ("job-get.reply", .reply(.job(info))),
        ("job-list.request", .request(.query(.listJobs(JobFilter(type: "image.analyse", state: .running, after: JobID(0), limit: 50))))),
        ("job-list.reply", .reply(.jobs([info], next: JobID(0)))),
        ("job-delete.request", .request(.command(seq, .deleteJob(JobID(9))))),
        ("job-delete.reply", .reply(.jobDeleted)),
        ("job-requeue.request", .request(.command(seq, .requeueJob(JobID(9))))),
        ("job-requeue.reply", .reply(.jobRequeued)),
        ("job-running.request", .request(.query(.jobRunning(type: "image.analyse")))),
        ("job-running.reply", .reply(.jobRunning(count: 1))),
        ("lock-force-release.request", .request(.command(seq, .forceReleaseLock(key: "reports/daily")))),
        ("lock-force-release.reply", .reply(.lockForceReleased(token: FencingToken(42)))),
        ("lease-list.request", .request(.query(.listLeases(limit: 100)))),
        ("lease-list.reply", .reply(.leases([
            LeaseInfo(kind: .lock, key: "reports/daily", jobID: JobID(0), owner: "worker-a", token: FencingToken(42),
                      expiresAt: Timestamp(milliseconds: 1_700_000_010_000)),
            LeaseInfo(kind: .job, key: "image.analyse", jobID: JobID(9), owner: "worker-a", token: FencingToken(43),
                      expiresAt: Timestamp(milliseconds: 1_700_000_060_000)),
        ]))),
        ("job-purge.request", .request(.command(seq, .purgeJobs(state: .dead, olderThan: 86_400_000)))),
        ("job-purge.reply", .reply(.jobsPurged(count: 12))),
        ("node-status.request", .request(.query(.nodeStatus))),
        ("node-status.reply", .reply(.status(NodeStatus(
            nodeID: "baton-1", address: "127.0.0.1:7700", role: .standalone, term: 1, commitIndex: 1200, appliedIndex: 1200,
            uptimeMilliseconds: 3_600_000, serverTime: Timestamp(milliseconds: 1_700_000_000_000), connections: 3,
            durable: true, summary: {
                var m = StateSummary()
                m.locksHeld = 1; m.lockWaiters = 1; m.jobsQueued = 4; m.jobsRunning = 1; m.jobsCompleted = 7; m.sessions = 3
                return m
            }())))),
        ("error.reply", .reply(.error(.staleToken, "token 41 does not hold lock 'reports/daily'"))),
        ("error.reply-not-leader", .reply(.error(ErrorReply(
            .notLeader, "node baton-2 is not the leader; leader=10.0.0.1:7700", leader: "10.0.0.1:7700")))),
        ("error.reply-not-leader-unknown", .reply(.error(ErrorReply(
            .notLeader, "node baton-2 is not the leader; no leader is known yet", leader: "")))),
        ("error.reply-not-leader-v2", .reply(
            .error(ErrorReply(.notLeader, "node baton-2 is not the leader; leader=10.0.0.1:7700")), version: 2)),
        ("error.reply-sequence-reused", .reply(.error(.sequenceReused, "sequence 3 was used for a different request"))),
        ("auth.request", .request(.auth(token: goldenToken))),
        ("auth.reply", .reply(.authenticated(user: "thumbs"))),
        ("error.reply-unauthenticated", .reply(.error(.unauthenticated, "authentication is on: send AUTH with a token first"))),
        ("error.reply-permission-denied", .reply(.error(.permissionDenied, "user 'thumbs' lacks job:add:billing"))),
        ("user-add.request", .request(.command(seq, .addUser(name: "thumbs")))),
        ("user-add.reply", .reply(.authUpdated(.userAdd))),
        ("user-delete.request", .request(.command(seq, .deleteUser(name: "thumbs")))),
        ("user-delete.reply", .reply(.authUpdated(.userDelete))),
        ("user-grant.request", .request(.command(seq, .grantRole(user: "thumbs", role: "thumbnailer")))),
        ("user-grant.reply", .reply(.authUpdated(.userGrant))),
        ("user-revoke.request", .request(.command(seq, .revokeRole(user: "thumbs", role: "thumbnailer")))),
        ("user-revoke.reply", .reply(.authUpdated(.userRevoke))),
        ("token-add.request", .request(.command(seq, .addToken(user: "thumbs", hash: TokenHash(of: goldenToken))))),
        ("token-add.reply", .reply(.tokenAdded(TokenHash(of: goldenToken).id))),
        ("token-remove.request", .request(.command(seq, .removeToken(user: "thumbs", id: TokenHash(of: goldenToken).id)))),
        ("token-remove.reply", .reply(.authUpdated(.tokenRemove))),
        ("role-add.request", .request(.command(seq, .addRole(name: "thumbnailer")))),
        ("role-add.reply", .reply(.authUpdated(.roleAdd))),
        ("role-delete.request", .request(.command(seq, .deleteRole(name: "thumbnailer")))),
        ("role-delete.reply", .reply(.authUpdated(.roleDelete))),
        ("role-grant.request", .request(.command(seq, .grantPermission(role: "thumbnailer", Permission(.job, [.write, .work], "thumbnail"))))),
        ("role-grant.reply", .reply(.authUpdated(.roleGrant))),
        ("role-revoke.request", .request(.command(seq, .revokePermission(role: "thumbnailer", Permission(.lock, .read, "reports/*"))))),
        ("role-revoke.reply", .reply(.authUpdated(.roleRevoke))),
        ("auth-list.request", .request(.query(.listAuth))),
        ("auth-list.reply", .reply(.auth(AuthListing(
            enabled: true,
            users: [AuthListing.User(name: "thumbs", roles: ["thumbnailer"], tokens: [TokenHash(of: goldenToken).id])],
            roles: [
                AuthListing.Role(name: "root", permissions: [Permission(.cluster, .admin)]),
                AuthListing.Role(name: "thumbnailer", permissions: [Permission(.job, [.write, .work], "thumbnail")]),
            ])))),
        ("schedule-put.request", .request(.command(seq, .putSchedule(schedule)))),
        ("schedule-put.request-cron", .request(.command(seq, .putSchedule(nightly)))),
        ("schedule-put.reply", .reply(.schedulePut(created: true))),
        ("schedule-delete.request", .request(.command(seq, .deleteSchedule(name: "scan-uploads")))),
        ("schedule-delete.reply", .reply(.scheduleUpdated(.scheduleDelete))),
        ("schedule-pause.request", .request(.command(seq, .pauseSchedule(name: "scan-uploads")))),
        ("schedule-pause.reply", .reply(.scheduleUpdated(.schedulePause))),
        ("schedule-resume.request", .request(.command(seq, .resumeSchedule(name: "scan-uploads")))),
        ("schedule-resume.reply", .reply(.scheduleUpdated(.scheduleResume))),
        ("schedule-trigger.request", .request(.command(seq, .triggerSchedule(name: "scan-uploads")))),
        ("schedule-trigger.reply", .reply(.scheduleTriggered(JobID(10)))),
        ("schedule-get.request", .request(.query(.getSchedule(name: "scan-uploads")))),
        ("schedule-get.reply", .reply(.schedule(scheduleInfo))),
        ("schedule-get.reply-none", .reply(.schedule(nil))),
        ("schedule-list.request", .request(.query(.listSchedules(after: "", limit: 100)))),
        ("schedule-list.reply", .reply(.schedules([scheduleInfo]))),
    ]
}()

let goldenDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Protocol/golden")

func encodeGolden(_ message: GoldenMessage) -> ByteBuffer {
    var b = ByteBuffer()
    switch message {
    case .request(let r): b.writeRequest(r, requestID: goldenRequestID)
    case .reply(let r, let version): b.writeReply(r, requestID: goldenRequestID, version: version)
    }
    return b
}

/// Hex text: the 10-byte header on the first line, then the body 16 bytes a line. `#` starts a comment.
func hexText(_ frame: ByteBuffer, title: String) -> String {
    let bytes = Array(frame.readableBytesView)
    func line(_ s: ArraySlice<UInt8>) -> String { s.map { String(format: "%02x", $0) }.joined(separator: " ") }
    var out = "# \(title)\n" + line(bytes[0..<10]) + "\n"
    var i = 10
    while i < bytes.count {
        out += line(bytes[i..<min(i + 16, bytes.count)]) + "\n"
        i += 16
    }
    return out
}

@Suite struct GoldenFrameTests {
    @Test(arguments: goldenFrames.map(\.name))
    func goldenFrameDecodesAndReencodesByteForByte(name: String) throws {
        let message = goldenFrames.first { $0.name == name }!.message
        let url = goldenDirectory.appendingPathComponent("\(name).hex")
        let encoded = encodeGolden(message)
        if ProcessInfo.processInfo.environment["BATON_UPDATE_GOLDEN"] == "1" {
            try hexText(encoded, title: name).write(to: url, atomically: true, encoding: .utf8)
        }
        let golden = parseHex(try String(contentsOf: url, encoding: .utf8))
        #expect(golden == Array(encoded.readableBytesView), "\(name): encoder output differs from the golden file")

        var buffer = ByteBuffer(bytes: golden)
        var decoder = FrameDecoder()
        let frame = try #require(try decoder.decode(buffer: &buffer))
        #expect(buffer.readableBytes == 0)
        #expect(frame.requestID == goldenRequestID)
        switch message {
        case .request(let expected):
            let decoded = try Request.decode(opcode: frame.opcode, body: frame.body)
            #expect(decoded == expected)
            var again = ByteBuffer()
            again.writeRequest(decoded, requestID: frame.requestID)
            #expect(Array(again.readableBytesView) == golden)
        case .reply(let expected, let version):
            let decoded = try Reply.decode(opcode: frame.opcode, body: frame.body, version: version)
            #expect(decoded == expected)
            var again = ByteBuffer()
            again.writeReply(decoded, requestID: frame.requestID, version: version)
            #expect(Array(again.readableBytesView) == golden)
        }
    }

    @Test func everyOpcodeHasGoldenFrames() throws {
        var requests = Set<UInt8>()
        var replies = Set<UInt8>()
        for (_, message) in goldenFrames {
            switch message {
            case .request(let r): requests.insert(r.opcode.rawValue)
            case .reply(let r, _): replies.insert(r.opcode.rawValue)
            }
        }
        for op in Opcode.requests {
            #expect(requests.contains(op.rawValue), "no golden request for \(op)")
            #expect(replies.contains(op.reply.rawValue), "no golden reply for \(op)")
        }
        #expect(replies.contains(Opcode.error.rawValue))
        let files = try FileManager.default.contentsOfDirectory(atPath: goldenDirectory.path).filter { $0.hasSuffix(".hex") }
        #expect(Set(files) == Set(goldenFrames.map { "\($0.name).hex" }), "Protocol/golden has files no test reads, or lacks some")
    }
}
