/// Which client connections a node takes (issue 33: 1,100 silent connections used up the node's
/// descriptors, and an authenticated client's TLS handshake then timed out). A value: the runtime
/// asks it as connections come, finish their handshake and go.
///
/// A connection is *pending* until it has said HELLO and, with authentication on, proved a user
/// (AUTH, a client certificate, or on HTTP/2 a first request with a token). Pending connections:
/// - may be at most `maxPendingPerHost` from one address, and
/// - may take at most seven eighths of `maxConnections`: the rest is kept for connections that
///   completed their handshake, so a flood of silent sockets cannot keep a worker out.
/// A pending connection that has not finished its handshake by the deadline is closed (the
/// runtime's deadline sweep), as is one whose frame takes too long to arrive.
struct ConnectionAdmission {
    let maxConnections: Int
    let maxPendingPerHost: Int
    private(set) var total = 0
    private(set) var pending = 0
    private var pendingByHost: [String: Int] = [:]

    enum Verdict: Equatable {
        case admit
        /// Close the connection: why, for the client and the log.
        case refuse(String)
    }

    init(maxConnections: Int, maxPendingPerHost: Int) {
        self.maxConnections = maxConnections
        self.maxPendingPerHost = maxPendingPerHost
    }

    /// The most pending connections at once: all but an eighth of `maxConnections`.
    var maxPending: Int { max(1, maxConnections - maxConnections / 8) }

    /// A connection from `host` opened: admitted (and counted pending), or refused.
    mutating func arrive(from host: String) -> Verdict {
        if total >= maxConnections {
            return .refuse("the node has \(total) connections, the most allowed (maxConnections)")
        }
        if pending >= maxPending {
            return .refuse(
                "the node has \(pending) connections that have not finished HELLO and AUTH; the other \(maxConnections - maxPending) of maxConnections are kept for clients that have")
        }
        let fromHost = pendingByHost[host] ?? 0
        if fromHost >= maxPendingPerHost {
            return .refuse("\(fromHost) connections from \(host) have not finished HELLO and AUTH (maxPendingConnectionsPerHost)")
        }
        total += 1
        pending += 1
        pendingByHost[host] = fromHost + 1
        return .admit
    }

    /// An admitted connection from `host` finished its handshake.
    mutating func handshakeCompleted(from host: String) {
        pending -= 1
        let n = pendingByHost[host] ?? 1
        pendingByHost[host] = n > 1 ? n - 1 : nil
    }

    /// An admitted connection from `host` closed, `stillPending` if before its handshake.
    mutating func left(from host: String, stillPending: Bool) {
        total -= 1
        if stillPending { handshakeCompleted(from: host) }
    }
}
