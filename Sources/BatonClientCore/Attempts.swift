import BatonProtocol

/// Why an attempt of a request failed, as far as sending it again is concerned.
public enum AttemptFailure: Hashable, Sendable {
    /// The node does not lead; it named the leader's `host:port`, or no one.
    case notLeader(leader: String?)
    /// The connection closed, or no endpoint accepted one, before the answer came.
    case connectionLost
    /// The node is shutting down.
    case shuttingDown
    /// No answer came within the request timeout.
    case timedOut
    /// AUTH refused the token while connecting: a member behind the leader may not know it yet.
    case unauthenticatedWhileConnecting
    /// Any other answer: it stands.
    case final
}

extension AttemptFailure {
    /// The failure an error answer means: NOT_LEADER (with the leader its `leader` field names, or
    /// for protocol version 2 its message) and SHUTTING_DOWN are retried; any other stands.
    public init(_ error: ErrorReply) {
        switch error.code {
        case .notLeader: self = .notLeader(leader: error.leaderHint)
        case .shuttingDown: self = .shuttingDown
        default: self = .final
        }
    }
}

/// Where the next attempt connects.
public enum AttemptRoute: Hashable, Sendable {
    /// Where it is: the same connection, or the endpoint the session would try next anyway.
    case stay
    /// To the next endpoint: this one failed.
    case nextEndpoint
    /// To the leader a node named.
    case leader(String)
}

/// What to do before sending a failed request again.
public struct Backoff: Hashable, Sendable {
    /// How long to wait first (zero: at once).
    public var delay: Duration
    /// Whether to drop the connection first.
    public var reconnect: Bool
    /// Where the next attempt goes.
    public var route: AttemptRoute

    /// Whether the attempt leaves the connection it failed on: it reconnects, or goes elsewhere.
    public var leavesConnection: Bool { reconnect || route != .stay }

    public init(delay: Duration, reconnect: Bool, route: AttemptRoute) {
        self.delay = delay
        self.reconnect = reconnect
        self.route = route
    }
}

/// The retries of one request, with no I/O: the rules the Swift client and the Python client's
/// `baton.session.Attempts` share (both replay `Clients/testdata/attempts.trace`).
///
/// A request is sent again, with the same sequence number (PROTOCOL.md section 5), until `giveUp`:
/// the time it may wait on the node plus the retry timeout. Delays double from 20 ms to 1 s.
/// - NOT_LEADER naming a leader: at once, to that leader (the delay does not grow); naming no one:
///   after the delay, to the next endpoint.
/// - A lost connection or SHUTTING_DOWN: after the delay, to the next endpoint.
/// - No answer in time: after the delay, on the same connection.
/// - AUTH refused while connecting: after the delay, the next endpoint first.
/// - Anything else, or a retry that would start at or after `giveUp`: the request has failed.
public struct Attempts<Instant: InstantProtocol>: Hashable, Sendable where Instant.Duration == Duration {
    /// When the request has failed for good.
    public let giveUp: Instant
    /// The delay before the next retry that backs off.
    public private(set) var delay: Duration = .milliseconds(20)

    /// The retries of a request sent at `now` that may wait `wait` on the node.
    public init(now: Instant, wait: Duration, retryTimeout: Duration) {
        giveUp = now.advanced(by: wait + retryTimeout)
    }

    /// How to go on after `failure` at `now`; nil when the request has failed and the failure is
    /// the caller's to report.
    public mutating func after(_ failure: AttemptFailure, at now: Instant) -> Backoff? {
        switch failure {
        case .final:
            return nil
        case .notLeader(let leader?) where !leader.isEmpty:
            guard now.advanced(by: delay) < giveUp else { return nil }
            return Backoff(delay: .zero, reconnect: true, route: .leader(leader))
        case .notLeader, .connectionLost, .shuttingDown, .unauthenticatedWhileConnecting:
            return backOff(at: now, reconnect: true, route: .nextEndpoint)
        case .timedOut:
            return backOff(at: now, reconnect: false, route: .stay)
        }
    }

    private mutating func backOff(at now: Instant, reconnect: Bool, route: AttemptRoute) -> Backoff? {
        guard now.advanced(by: delay) < giveUp else { return nil }
        defer { delay = min(delay * 2, .seconds(1)) }
        return Backoff(delay: delay, reconnect: reconnect, route: route)
    }
}
