/// The byte after a frame's length that says what the frame is. A success reply carries its request's
/// opcode with the high bit set (`0x10` → `0x90`); an error reply to any request carries `0xFF`.
public struct Opcode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let hello = Opcode(rawValue: 0x01)
    public static let ping = Opcode(rawValue: 0x02)
    public static let auth = Opcode(rawValue: 0x03)

    public static let lockAcquire = Opcode(rawValue: 0x10)
    public static let lockRenew = Opcode(rawValue: 0x11)
    public static let lockRelease = Opcode(rawValue: 0x12)
    public static let lockGet = Opcode(rawValue: 0x13)
    public static let lockList = Opcode(rawValue: 0x14)
    public static let lockForceRelease = Opcode(rawValue: 0x15)
    public static let leaseList = Opcode(rawValue: 0x16)

    public static let jobAdd = Opcode(rawValue: 0x20)
    public static let jobClaim = Opcode(rawValue: 0x21)
    public static let jobClaimByID = Opcode(rawValue: 0x22)
    public static let jobExtend = Opcode(rawValue: 0x23)
    public static let jobComplete = Opcode(rawValue: 0x24)
    public static let jobFail = Opcode(rawValue: 0x25)
    public static let jobAbort = Opcode(rawValue: 0x26)
    public static let jobGet = Opcode(rawValue: 0x27)
    public static let jobList = Opcode(rawValue: 0x28)
    public static let jobDelete = Opcode(rawValue: 0x29)
    public static let jobRequeue = Opcode(rawValue: 0x2A)
    public static let jobRunning = Opcode(rawValue: 0x2B)
    public static let jobPurge = Opcode(rawValue: 0x2C)
    public static let jobAddBatch = Opcode(rawValue: 0x2D)
    public static let jobClaimBatch = Opcode(rawValue: 0x2E)
    public static let jobCompleteBatch = Opcode(rawValue: 0x2F)

    public static let schedulePut = Opcode(rawValue: 0x30)
    public static let scheduleDelete = Opcode(rawValue: 0x31)
    public static let schedulePause = Opcode(rawValue: 0x32)
    public static let scheduleResume = Opcode(rawValue: 0x33)
    public static let scheduleTrigger = Opcode(rawValue: 0x34)
    public static let scheduleGet = Opcode(rawValue: 0x35)
    public static let scheduleList = Opcode(rawValue: 0x36)

    public static let nodeStatus = Opcode(rawValue: 0x40)

    public static let userAdd = Opcode(rawValue: 0x50)
    public static let userDelete = Opcode(rawValue: 0x51)
    public static let userGrant = Opcode(rawValue: 0x52)
    public static let userRevoke = Opcode(rawValue: 0x53)
    public static let tokenAdd = Opcode(rawValue: 0x54)
    public static let tokenRemove = Opcode(rawValue: 0x55)
    public static let roleAdd = Opcode(rawValue: 0x56)
    public static let roleDelete = Opcode(rawValue: 0x57)
    public static let roleGrant = Opcode(rawValue: 0x58)
    public static let roleRevoke = Opcode(rawValue: 0x59)
    public static let authList = Opcode(rawValue: 0x5A)

    public static let error = Opcode(rawValue: 0xFF)

    /// Every request opcode, in table order.
    public static let requests: [Opcode] = [
        .hello, .ping, .lockAcquire, .lockRenew, .lockRelease, .lockGet, .lockList,
        .jobAdd, .jobClaim, .jobClaimByID, .jobExtend, .jobComplete, .jobFail, .jobAbort,
        .jobGet, .jobList, .jobDelete, .jobRequeue, .jobRunning,
        .lockForceRelease, .leaseList, .jobPurge, .jobAddBatch, .jobClaimBatch, .jobCompleteBatch, .nodeStatus,
        .auth, .userAdd, .userDelete, .userGrant, .userRevoke, .tokenAdd, .tokenRemove,
        .roleAdd, .roleDelete, .roleGrant, .roleRevoke, .authList,
        .schedulePut, .scheduleDelete, .schedulePause, .scheduleResume, .scheduleTrigger, .scheduleGet, .scheduleList,
    ]

    /// The schedule changes whose success reply has an empty body.
    public static let scheduleChanges: Set<Opcode> = [.scheduleDelete, .schedulePause, .scheduleResume]

    /// The user and role changes whose success reply has an empty body (TOKEN_ADD answers with an id).
    public static let authChanges: Set<Opcode> = [
        .userAdd, .userDelete, .userGrant, .userRevoke, .tokenRemove, .roleAdd, .roleDelete, .roleGrant, .roleRevoke,
    ]

    /// The success-reply opcode for this request opcode.
    @inlinable public var reply: Opcode { Opcode(rawValue: rawValue | 0x80) }
    @inlinable public var isReply: Bool { rawValue & 0x80 != 0 }

    public var name: String {
        if self == .error { return "ERROR" }
        let base = Opcode(rawValue: rawValue & 0x7F)
        let n: String
        switch base {
        case .hello: n = "HELLO"
        case .ping: n = "PING"
        case .lockAcquire: n = "LOCK_ACQUIRE"
        case .lockRenew: n = "LOCK_RENEW"
        case .lockRelease: n = "LOCK_RELEASE"
        case .lockGet: n = "LOCK_GET"
        case .lockList: n = "LOCK_LIST"
        case .jobAdd: n = "JOB_ADD"
        case .jobClaim: n = "JOB_CLAIM"
        case .jobClaimByID: n = "JOB_CLAIM_ID"
        case .jobAddBatch: n = "JOB_ADD_BATCH"
        case .jobClaimBatch: n = "JOB_CLAIM_BATCH"
        case .jobCompleteBatch: n = "JOB_COMPLETE_BATCH"
        case .jobExtend: n = "JOB_EXTEND"
        case .jobComplete: n = "JOB_COMPLETE"
        case .jobFail: n = "JOB_FAIL"
        case .jobAbort: n = "JOB_ABORT"
        case .jobGet: n = "JOB_GET"
        case .jobList: n = "JOB_LIST"
        case .jobDelete: n = "JOB_DELETE"
        case .jobRequeue: n = "JOB_REQUEUE"
        case .jobRunning: n = "JOB_RUNNING"
        case .lockForceRelease: n = "LOCK_FORCE_RELEASE"
        case .leaseList: n = "LEASE_LIST"
        case .jobPurge: n = "JOB_PURGE"
        case .nodeStatus: n = "NODE_STATUS"
        case .auth: n = "AUTH"
        case .userAdd: n = "USER_ADD"
        case .userDelete: n = "USER_DELETE"
        case .userGrant: n = "USER_GRANT"
        case .userRevoke: n = "USER_REVOKE"
        case .tokenAdd: n = "TOKEN_ADD"
        case .tokenRemove: n = "TOKEN_REMOVE"
        case .roleAdd: n = "ROLE_ADD"
        case .roleDelete: n = "ROLE_DELETE"
        case .roleGrant: n = "ROLE_GRANT"
        case .roleRevoke: n = "ROLE_REVOKE"
        case .authList: n = "AUTH_LIST"
        case .schedulePut: n = "SCHEDULE_PUT"
        case .scheduleDelete: n = "SCHEDULE_DELETE"
        case .schedulePause: n = "SCHEDULE_PAUSE"
        case .scheduleResume: n = "SCHEDULE_RESUME"
        case .scheduleTrigger: n = "SCHEDULE_TRIGGER"
        case .scheduleGet: n = "SCHEDULE_GET"
        case .scheduleList: n = "SCHEDULE_LIST"
        default: return "0x" + String(rawValue, radix: 16, uppercase: true)
        }
        return isReply ? n + "_OK" : n
    }

    public var description: String { name }
}

extension Command {
    public var opcode: Opcode {
        switch self {
        case .acquireLock: .lockAcquire
        case .renewLock: .lockRenew
        case .releaseLock: .lockRelease
        case .addJob: .jobAdd
        case .claimJob: .jobClaim
        case .claimJobByID: .jobClaimByID
        case .addJobs: .jobAddBatch
        case .claimJobs: .jobClaimBatch
        case .completeJobs: .jobCompleteBatch
        case .extendJob: .jobExtend
        case .completeJob: .jobComplete
        case .failJob: .jobFail
        case .abortJob: .jobAbort
        case .deleteJob: .jobDelete
        case .requeueJob: .jobRequeue
        case .forceReleaseLock: .lockForceRelease
        case .purgeJobs: .jobPurge
        case .addUser: .userAdd
        case .deleteUser: .userDelete
        case .grantRole: .userGrant
        case .revokeRole: .userRevoke
        case .addToken: .tokenAdd
        case .removeToken: .tokenRemove
        case .addRole: .roleAdd
        case .deleteRole: .roleDelete
        case .grantPermission: .roleGrant
        case .revokePermission: .roleRevoke
        case .putSchedule: .schedulePut
        case .deleteSchedule: .scheduleDelete
        case .pauseSchedule: .schedulePause
        case .resumeSchedule: .scheduleResume
        case .triggerSchedule: .scheduleTrigger
        }
    }
}

extension Query {
    public var opcode: Opcode {
        switch self {
        case .getLock: .lockGet
        case .listLocks: .lockList
        case .getJob: .jobGet
        case .listJobs: .jobList
        case .jobRunning: .jobRunning
        case .listLeases: .leaseList
        case .nodeStatus: .nodeStatus
        case .listAuth: .authList
        case .getSchedule: .scheduleGet
        case .listSchedules: .scheduleList
        }
    }
}

extension Request {
    public var opcode: Opcode {
        switch self {
        case .hello: .hello
        case .ping: .ping
        case .auth: .auth
        case .command(_, let c): c.opcode
        case .query(let q): q.opcode
        }
    }
}

extension Reply {
    public var opcode: Opcode {
        switch self {
        case .hello: Opcode.hello.reply
        case .pong: Opcode.ping.reply
        case .lockAcquired: Opcode.lockAcquire.reply
        case .lockRenewed: Opcode.lockRenew.reply
        case .lockReleased: Opcode.lockRelease.reply
        case .lock: Opcode.lockGet.reply
        case .locks: Opcode.lockList.reply
        case .jobAdded: Opcode.jobAdd.reply
        case .jobClaimed: Opcode.jobClaim.reply
        case .jobClaimedByID: Opcode.jobClaimByID.reply
        case .jobsAdded: Opcode.jobAddBatch.reply
        case .jobsClaimed: Opcode.jobClaimBatch.reply
        case .jobsCompleted: Opcode.jobCompleteBatch.reply
        case .jobExtended: Opcode.jobExtend.reply
        case .jobCompleted: Opcode.jobComplete.reply
        case .jobFailed: Opcode.jobFail.reply
        case .jobAborted: Opcode.jobAbort.reply
        case .job: Opcode.jobGet.reply
        case .jobs: Opcode.jobList.reply
        case .jobDeleted: Opcode.jobDelete.reply
        case .jobRequeued: Opcode.jobRequeue.reply
        case .jobRunning: Opcode.jobRunning.reply
        case .lockForceReleased: Opcode.lockForceRelease.reply
        case .jobsPurged: Opcode.jobPurge.reply
        case .leases: Opcode.leaseList.reply
        case .status: Opcode.nodeStatus.reply
        case .authenticated: Opcode.auth.reply
        case .authUpdated(let request): request.reply
        case .tokenAdded: Opcode.tokenAdd.reply
        case .auth: Opcode.authList.reply
        case .schedulePut: Opcode.schedulePut.reply
        case .scheduleUpdated(let request): request.reply
        case .scheduleTriggered: Opcode.scheduleTrigger.reply
        case .schedule: Opcode.scheduleGet.reply
        case .schedules: Opcode.scheduleList.reply
        case .error: .error
        }
    }
}
