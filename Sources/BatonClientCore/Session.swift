import BatonProtocol

/// One client's identity and its view of the cluster, with no I/O: the client id, the sequence and
/// request-id counters, the endpoints in the order to try them, and the leader a node named. The
/// rules the Swift client and the Python client's `baton.session.Session` share (both replay
/// `Clients/testdata/session.trace`).
///
/// - A command takes the next sequence number, which every retry of it keeps (PROTOCOL.md section 5).
/// - Request ids run from 2 (1 is HELLO's) to 2³²−1, then from 2 again.
/// - A connection tries the leader a node named (once), then each endpoint from the one that last
///   answered; `rotate` (an endpoint failed) moves that start to the next endpoint.
public struct Session: Hashable, Sendable {
    /// This client's id, sent in HELLO.
    public let clientID: ClientID
    /// The configured endpoints, `host:port`.
    public let endpoints: [String]
    /// The last sequence number given to a command (0: none yet).
    public private(set) var lastSequence: UInt64 = 0
    /// The last request id given out.
    public private(set) var lastRequestID: UInt32 = 1
    /// The leader a NOT_LEADER answer named, tried first by the next connection.
    public private(set) var leaderHint: String?
    /// The index in `endpoints` the next connection starts from.
    public private(set) var start = 0

    public init(clientID: ClientID, endpoints: [String]) {
        self.clientID = clientID
        self.endpoints = endpoints
    }

    /// The sequence number of a new command.
    public mutating func nextSequence() -> SequenceNumber {
        lastSequence += 1
        return SequenceNumber(lastSequence)
    }

    /// The id of a new request (or of a retry: a retry is a new request on the wire).
    public mutating func nextRequestID() -> RequestID {
        lastRequestID = lastRequestID == .max ? 2 : lastRequestID + 1
        return RequestID(lastRequestID)
    }

    /// The endpoints a new connection tries, in order: the leader a node named (this once), then
    /// each endpoint from `start`.
    public mutating func candidates() -> [String] {
        let hint = leaderHint
        leaderHint = nil
        let ordered = endpoints.indices.map { endpoints[(start + $0) % endpoints.count] }
        guard let hint else { return ordered }
        return [hint] + ordered.filter { $0 != hint }
    }

    /// A connection to `endpoint` was made: later connections start there (when it is configured).
    public mutating func connected(to endpoint: String) {
        if let index = endpoints.firstIndex(of: endpoint) { start = index }
    }

    /// The current endpoint failed: start from the next one.
    public mutating func rotate() {
        if !endpoints.isEmpty { start = (start + 1) % endpoints.count }
    }

    /// A node said it does not lead, naming `leader` (nil or empty: no one, and the next endpoint
    /// is tried).
    public mutating func redirect(to leader: String?) {
        if let leader, !leader.isEmpty {
            leaderHint = leader
        } else {
            leaderHint = nil
            rotate()
        }
    }

    /// Goes where a `Backoff` sends the next attempt.
    public mutating func follow(_ route: AttemptRoute) {
        switch route {
        case .stay: break
        case .nextEndpoint: rotate()
        case .leader(let leader): redirect(to: leader)
        }
    }
}
