/// A numbered error carried by an error reply (opcode 0xFF). The numbers are part of the wire contract:
/// see the error-code table in Protocol/PROTOCOL.md.
public struct ErrorCode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A field runs past the end of the frame, bytes are left over, or a value is not of its type.
    public static let malformedFrame = ErrorCode(rawValue: 1)
    /// HELLO asked for a protocol version this node does not speak. The connection is closed.
    public static let unsupportedVersion = ErrorCode(rawValue: 2)
    /// The opcode is not one this node knows.
    public static let unknownOpcode = ErrorCode(rawValue: 3)
    /// The frame's length exceeds the maximum frame size. The connection is closed.
    public static let frameTooLarge = ErrorCode(rawValue: 4)
    /// A request other than HELLO or PING arrived before HELLO.
    public static let helloRequired = ErrorCode(rawValue: 5)
    /// A field is well-formed but out of range: empty or over-long key, invalid UTF-8, TTL out of bounds.
    public static let invalidArgument = ErrorCode(rawValue: 6)
    /// A lock renew or release presented a token that does not hold the lock (expired, released, or never held).
    public static let staleToken = ErrorCode(rawValue: 7)
    /// A job extend, complete, fail or abort came from a claim that expired or was superseded.
    public static let claimLost = ErrorCode(rawValue: 8)
    /// No job with that id exists (never added, deleted, or purged after completion).
    public static let jobNotFound = ErrorCode(rawValue: 9)
    /// The job exists but is in a state that does not allow the operation (for example, requeue of a job that is not dead).
    public static let invalidState = ErrorCode(rawValue: 10)
    /// The request's sequence number is older than the answers this node still remembers for the client.
    public static let sequenceTooOld = ErrorCode(rawValue: 11)
    /// The connection sent nothing for the idle timeout. The connection is closed.
    public static let idleTimeout = ErrorCode(rawValue: 12)
    /// The node is shutting down. Retry on another node or after it restarts.
    public static let shuttingDown = ErrorCode(rawValue: 13)
    /// An admin release named a lock that nobody holds.
    public static let lockNotHeld = ErrorCode(rawValue: 14)
    /// This cluster member does not lead. From protocol version 3 the error names the leader's
    /// `host:port` in a field of its own (`ErrorReply.leader`; empty when an election is under way);
    /// the message ends with `leader=<host:port>` for version 2. Retry there, with the same sequence number.
    public static let notLeader = ErrorCode(rawValue: 15)
    /// Adding the job or taking the lock would pass one of the cluster's quotas (`maxJobs`,
    /// `maxJobBytes`, `maxLocks`): the message names it. Not retried by itself; it succeeds once
    /// jobs are completed, deleted or purged, or locks released.
    public static let quotaExceeded = ErrorCode(rawValue: 16)
    /// The command's sequence number was answered, or waits, for a different request (another opcode
    /// or other fields). Nothing is applied; the earlier answer stays remembered for its own retries.
    public static let sequenceReused = ErrorCode(rawValue: 17)
    /// Authentication is on and the request came without a known token: before AUTH, after AUTH was
    /// refused, or after the token or its user was removed. AUTH with a token that is not known gets it too.
    public static let unauthenticated = ErrorCode(rawValue: 18)
    /// The user is known but none of its roles grants what the request needs; the message names the
    /// permission (`job:work:billing`). Nothing is applied.
    public static let permissionDenied = ErrorCode(rawValue: 19)

    public static let all: [ErrorCode] = [
        .malformedFrame, .unsupportedVersion, .unknownOpcode, .frameTooLarge, .helloRequired,
        .invalidArgument, .staleToken, .claimLost, .jobNotFound, .invalidState, .sequenceTooOld,
        .idleTimeout, .shuttingDown, .lockNotHeld, .notLeader, .quotaExceeded, .sequenceReused,
        .unauthenticated, .permissionDenied,
    ]

    /// Whether the same request may succeed if sent again unchanged (with the same sequence number).
    public var isRetriable: Bool {
        self == .shuttingDown || self == .notLeader
    }

    public var name: String {
        switch self {
        case .malformedFrame: "MALFORMED_FRAME"
        case .unsupportedVersion: "UNSUPPORTED_VERSION"
        case .unknownOpcode: "UNKNOWN_OPCODE"
        case .frameTooLarge: "FRAME_TOO_LARGE"
        case .helloRequired: "HELLO_REQUIRED"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .staleToken: "STALE_TOKEN"
        case .claimLost: "CLAIM_LOST"
        case .jobNotFound: "JOB_NOT_FOUND"
        case .invalidState: "INVALID_STATE"
        case .sequenceTooOld: "SEQUENCE_TOO_OLD"
        case .idleTimeout: "IDLE_TIMEOUT"
        case .shuttingDown: "SHUTTING_DOWN"
        case .lockNotHeld: "LOCK_NOT_HELD"
        case .notLeader: "NOT_LEADER"
        case .quotaExceeded: "QUOTA_EXCEEDED"
        case .sequenceReused: "SEQUENCE_REUSED"
        case .unauthenticated: "UNAUTHENTICATED"
        case .permissionDenied: "PERMISSION_DENIED"
        default: "ERROR_\(rawValue)"
        }
    }

    public var description: String { name }
}

/// An error of the protocol: a code and a human-readable message. A node answers with it (an ERROR
/// frame), and the decoders throw it for a frame or message they cannot read, with the code the
/// node answers such a frame with.
public struct ErrorReply: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// For NOT_LEADER: the leader's client address, `host:port`, or empty when no leader is known. Sent
    /// in protocol version 3 and later (and in HTTP/2's `baton-leader` header); nil when not sent.
    public var leader: String?
    public init(_ code: ErrorCode, _ message: String, leader: String? = nil) {
        self.code = code
        self.message = message
        self.leader = leader
    }
    public var description: String { "\(code.name): \(message)" }

    public static func truncated(_ field: String) -> ErrorReply {
        ErrorReply(.malformedFrame, "field '\(field)' runs past the end of the frame")
    }

    /// For NOT_LEADER: the leader's `host:port` when the member knows it; nil otherwise. Read from
    /// `leader` when it was sent, else (protocol version 2) from the message's end, `leader=<host:port>`.
    public var leaderHint: String? {
        guard code == .notLeader else { return nil }
        if let leader { return leader.isEmpty ? nil : leader }
        guard let marker = message.ranges(of: "leader=").last else { return nil }
        return String(message[marker.upperBound...])
    }
}
