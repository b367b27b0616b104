import BatonCore
import BatonProtocol
import BatonStorage
import Foundation

/// Everything a node needs to run. Every field has one default, here, and a configuration file
/// names only what it changes. The defaults are those of a node that serves (`baton serve`): durable
/// in `baton-data`, metrics on port 9770. `NodeConfiguration.inMemory` is the node of `baton dev` and
/// of tests: nothing on disk, no metrics endpoint.
public struct NodeConfiguration: Sendable, Hashable, Codable {
    /// This node's name, reported in HELLO and in logs.
    public var nodeID: String = "baton-1"
    /// Address the client listener binds to.
    public var host: String = "127.0.0.1"
    /// Port of the client listener; 0 picks a free one.
    public var port: Int = 7700
    /// TLS on the client port. Nil: plain TCP.
    public var tls: ClientTLS? = nil
    /// Serve on an address other than loopback without TLS or without authentication (`exposure`):
    /// `baton serve` refuses to unless this is true, and then warns on every start.
    public var insecure: Bool = false
    /// Mutual TLS between members on the raft port. Nil: plain TCP between members.
    public var peerTLS: PeerTLS? = nil
    /// Authentication with bearer tokens, users and roles. Nil: not configured here (a cluster whose
    /// state has it on still enforces it).
    public var auth: AuthConfiguration? = nil
    /// The largest frame a client may send, in bytes (the length field's value).
    public var maxFrameSize: Int = Frame.defaultMaxSize
    /// A connection that sends nothing for this long, and waits on nothing, is closed.
    public var idleTimeoutMilliseconds: UInt32 = 300_000
    /// Most client connections (TCP and HTTP/2) at once; more are closed as they come. 0: the
    /// descriptors the process may open (raised to the hard limit at start) less 64, at most 65,536.
    public var maxConnections: Int = 0
    /// Most connections from one address that have not finished HELLO (and AUTH, with
    /// authentication on) at once (`ConnectionAdmission`).
    public var maxPendingConnectionsPerHost: Int = 256
    /// A connection that has not said HELLO (and, with authentication on, proved a user) this long
    /// after it opened is closed. Before that, a frame may be at most 64 KiB.
    public var handshakeTimeoutMilliseconds: Int = 10_000
    /// A frame whose first byte arrived this long ago and whose last has not is closed with its
    /// connection (a client dribbling a frame a byte at a time holds the node's memory).
    public var frameTimeoutMilliseconds: Int = 30_000
    /// Limits and defaults of locks and jobs.
    public var limits: Limits = Limits()
    /// Where the write-ahead log and snapshots live. Nil (`null` in the file): in memory only, gone
    /// when the node stops, as `baton dev` runs.
    public var dataDirectory: String? = "baton-data"
    /// `always`: every acknowledged command is on disk (fdatasync per group commit). `none`: never
    /// sync (for tests and throw-away nodes; a machine crash loses recent commands).
    public var sync: WriteAheadLog.SyncMode = .always
    /// A snapshot is taken (in the background) after this many log entries…
    public var snapshotEveryEntries: Int = 100_000
    /// …or once this many bytes were written to the log since the last one, whichever comes first.
    public var snapshotEveryBytes: Int = 64 << 20
    /// A log segment is closed and a new one started past this size.
    public var segmentSizeBytes: Int = 64 << 20
    /// A group commit (write and sync) that takes this long or longer is logged as a warning.
    public var slowLogWriteMilliseconds: Int = 1000
    /// Port of the Prometheus endpoint (`GET /metrics` on `host`); 0 picks a free one; nil: none.
    public var metricsPort: Int? = 9770
    /// Port for Baton over HTTP/2 with prior knowledge (h2c) on `host`; 0 picks a free one; nil: none.
    public var http2Port: Int? = nil
    /// Most HTTP/2 streams one connection may have open at once.
    public var http2MaxConcurrentStreams: Int = 256
    /// The cluster's members, this node (by `nodeID`) among them, the same list on every node.
    /// Nil: a single node with no replication.
    public var cluster: [ClusterMember]? = nil
    /// One Raft tick. Elections start after 15–30 ticks without a leader; leaders send heartbeats every 2.
    public var tickMilliseconds: Int = 10
    /// A new leader withdraws, this long after taking office, the waiting acquires and claims of
    /// clients that have not connected to it (they waited on a member that died, and went too).
    public var absentClientGraceMilliseconds: Int = 10_000

    /// A member of a cluster: its name, the address clients use, the port its peers use, and its
    /// HTTP/2 port if it serves one (so that the others can name it to HTTP/2 clients).
    public struct ClusterMember: Sendable, Hashable, Codable {
        public var nodeID: String
        public var host: String
        public var port: Int
        public var raftPort: Int
        public var http2Port: Int?
        public init(nodeID: String, host: String, port: Int, raftPort: Int, http2Port: Int? = nil) {
            self.nodeID = nodeID
            self.host = host
            self.port = port
            self.raftPort = raftPort
            self.http2Port = http2Port
        }
        public var clientAddress: String { "\(host):\(port)" }
        public var http2Address: String? { http2Port.map { "\(host):\($0)" } }
    }

    /// The cluster as Raft numbers it, if this node is a member of one.
    var membership: Membership? {
        cluster.flatMap { Membership($0, me: nodeID) }
    }

    /// The state machine's limits and defaults, as written in a configuration file. Their default
    /// values are `StateMachine.Configuration`'s, the one place they are declared.
    public struct Limits: Sendable, Hashable, Codable {
        private static let machine = StateMachine.Configuration()
        public var maxKeyLength: Int = machine.maxKeyLength
        public var minTTLMilliseconds: UInt32 = machine.minTTL.rawValue
        public var maxTTLMilliseconds: UInt32 = machine.maxTTL.rawValue
        public var maxWaitMilliseconds: UInt32 = machine.maxWait.rawValue
        public var defaultJobTimeoutMilliseconds: UInt32 = machine.defaultJobTimeout.rawValue
        public var defaultMaxAttempts: UInt16 = machine.defaultMaxAttempts
        public var defaultBackoffMilliseconds: UInt32 = machine.defaultBackoff.rawValue
        public var completedRetentionMilliseconds: UInt32 = machine.completedRetention.rawValue
        public var maxCompletedJobs: Int = machine.maxCompletedJobs
        public var maxJobs: Int = machine.maxJobs
        public var maxJobBytes: Int = machine.maxJobBytes
        public var maxLocks: Int = machine.maxLocks
        public var maxClients: Int = machine.maxClients
        public var maxClientsPerUser: Int = machine.maxClientsPerUser
        public var maxSchedules: Int = machine.maxSchedules
        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxKeyLength, minTTLMilliseconds, maxTTLMilliseconds, maxWaitMilliseconds
            case defaultJobTimeoutMilliseconds, defaultMaxAttempts, defaultBackoffMilliseconds
            case completedRetentionMilliseconds, maxCompletedJobs, maxJobs, maxJobBytes, maxLocks, maxClients, maxSchedules
            case maxClientsPerUser
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Limits()
            func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
                try c.decodeIfPresent(T.self, forKey: key) ?? fallback
            }
            maxKeyLength = try value(.maxKeyLength, d.maxKeyLength)
            minTTLMilliseconds = try value(.minTTLMilliseconds, d.minTTLMilliseconds)
            maxTTLMilliseconds = try value(.maxTTLMilliseconds, d.maxTTLMilliseconds)
            maxWaitMilliseconds = try value(.maxWaitMilliseconds, d.maxWaitMilliseconds)
            defaultJobTimeoutMilliseconds = try value(.defaultJobTimeoutMilliseconds, d.defaultJobTimeoutMilliseconds)
            defaultMaxAttempts = try value(.defaultMaxAttempts, d.defaultMaxAttempts)
            defaultBackoffMilliseconds = try value(.defaultBackoffMilliseconds, d.defaultBackoffMilliseconds)
            completedRetentionMilliseconds = try value(.completedRetentionMilliseconds, d.completedRetentionMilliseconds)
            maxCompletedJobs = try value(.maxCompletedJobs, d.maxCompletedJobs)
            maxJobs = try value(.maxJobs, d.maxJobs)
            maxJobBytes = try value(.maxJobBytes, d.maxJobBytes)
            maxLocks = try value(.maxLocks, d.maxLocks)
            maxClients = try value(.maxClients, d.maxClients)
            maxClientsPerUser = try value(.maxClientsPerUser, d.maxClientsPerUser)
            maxSchedules = try value(.maxSchedules, d.maxSchedules)
        }
    }

    public init() {}

    /// A node that keeps nothing on disk and serves no metrics (`baton dev`, tests).
    public static var inMemory: NodeConfiguration {
        var c = NodeConfiguration()
        c.dataDirectory = nil
        c.metricsPort = nil
        return c
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case nodeID, host, port, tls, peerTLS, auth, insecure, maxFrameSize, idleTimeoutMilliseconds, limits
        case maxConnections, maxPendingConnectionsPerHost, handshakeTimeoutMilliseconds, frameTimeoutMilliseconds
        case dataDirectory, sync, snapshotEveryEntries, snapshotEveryBytes, segmentSizeBytes, slowLogWriteMilliseconds
        case metricsPort, http2Port, http2MaxConcurrentStreams
        case cluster, tickMilliseconds, absentClientGraceMilliseconds
    }

    public init(from decoder: any Decoder) throws {
        // Every key is optional: a file names only what it changes.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeConfiguration()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        nodeID = try value(.nodeID, d.nodeID)
        host = try value(.host, d.host)
        port = try value(.port, d.port)
        tls = try c.decodeIfPresent(ClientTLS.self, forKey: .tls)
        auth = try c.decodeIfPresent(AuthConfiguration.self, forKey: .auth)
        peerTLS = try c.decodeIfPresent(PeerTLS.self, forKey: .peerTLS)
        insecure = try value(.insecure, d.insecure)
        maxFrameSize = try value(.maxFrameSize, d.maxFrameSize)
        idleTimeoutMilliseconds = try value(.idleTimeoutMilliseconds, d.idleTimeoutMilliseconds)
        limits = try value(.limits, d.limits)
        maxConnections = try value(.maxConnections, d.maxConnections)
        maxPendingConnectionsPerHost = try value(.maxPendingConnectionsPerHost, d.maxPendingConnectionsPerHost)
        handshakeTimeoutMilliseconds = try value(.handshakeTimeoutMilliseconds, d.handshakeTimeoutMilliseconds)
        frameTimeoutMilliseconds = try value(.frameTimeoutMilliseconds, d.frameTimeoutMilliseconds)
        // An explicit null means in memory; a missing key, the default directory.
        dataDirectory = c.contains(.dataDirectory) ? try c.decodeIfPresent(String.self, forKey: .dataDirectory) : d.dataDirectory
        sync = try value(.sync, d.sync)
        snapshotEveryEntries = try value(.snapshotEveryEntries, d.snapshotEveryEntries)
        snapshotEveryBytes = try value(.snapshotEveryBytes, d.snapshotEveryBytes)
        segmentSizeBytes = try value(.segmentSizeBytes, d.segmentSizeBytes)
        slowLogWriteMilliseconds = try value(.slowLogWriteMilliseconds, d.slowLogWriteMilliseconds)
        metricsPort = try value(.metricsPort, d.metricsPort)
        http2Port = try c.decodeIfPresent(Int.self, forKey: .http2Port)
        http2MaxConcurrentStreams = try value(.http2MaxConcurrentStreams, d.http2MaxConcurrentStreams)
        cluster = try c.decodeIfPresent([ClusterMember].self, forKey: .cluster)
        tickMilliseconds = try value(.tickMilliseconds, d.tickMilliseconds)
        absentClientGraceMilliseconds = try value(.absentClientGraceMilliseconds, d.absentClientGraceMilliseconds)
    }

    /// What the node leaves open to the network, or nil: nothing when it listens on loopback only, or
    /// has TLS on its client and HTTP/2 ports, authentication, and (in a cluster) TLS between members.
    /// The metrics endpoint is plain HTTP and read only; firewall it where its numbers are private.
    public var exposure: String? {
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard !loopback else { return nil }
        var missing: [String] = []
        if tls == nil { missing.append(http2Port == nil ? "TLS (tls)" : "TLS on the client and HTTP/2 ports (tls)") }
        if auth == nil { missing.append("authentication (auth)") }
        if (cluster?.count ?? 0) > 1 && peerTLS == nil { missing.append("TLS between members (peerTLS)") }
        guard !missing.isEmpty else { return nil }
        return "the node listens on \(host) without \(missing.joined(separator: ", "))"
    }

    /// Checks every rule; returns one message per broken rule.
    public func validate() -> [String] {
        var problems: [String] = []
        if nodeID.isEmpty { problems.append("nodeID must not be empty") }
        if !(0...65535).contains(port) { problems.append("port \(port) is outside 0...65535") }
        if let m = metricsPort, !(0...65535).contains(m) { problems.append("metricsPort \(m) is outside 0...65535") }
        if let h = http2Port, !(0...65535).contains(h) { problems.append("http2Port \(h) is outside 0...65535") }
        if !(1...10_000).contains(http2MaxConcurrentStreams) { problems.append("http2MaxConcurrentStreams must be in 1...10000") }
        if maxFrameSize < 1024 || maxFrameSize > Frame.defaultMaxSize * 16 {
            problems.append("maxFrameSize \(maxFrameSize) is outside 1024...\(Frame.defaultMaxSize * 16)")
        }
        if idleTimeoutMilliseconds < 1000 { problems.append("idleTimeoutMilliseconds must be at least 1000") }
        if maxConnections < 0 { problems.append("maxConnections must be 0 (from the descriptor limit) or more") }
        if maxPendingConnectionsPerHost < 1 { problems.append("maxPendingConnectionsPerHost must be at least 1") }
        if handshakeTimeoutMilliseconds < 100 { problems.append("handshakeTimeoutMilliseconds must be at least 100") }
        if frameTimeoutMilliseconds < 100 { problems.append("frameTimeoutMilliseconds must be at least 100") }
        if limits.minTTLMilliseconds == 0 { problems.append("limits.minTTLMilliseconds must be above zero") }
        if limits.minTTLMilliseconds > limits.maxTTLMilliseconds {
            problems.append("limits.minTTLMilliseconds exceeds limits.maxTTLMilliseconds")
        }
        if !(1...4096).contains(limits.maxKeyLength) { problems.append("limits.maxKeyLength must be in 1...4096") }
        if limits.defaultMaxAttempts == 0 { problems.append("limits.defaultMaxAttempts must be above zero") }
        if limits.maxCompletedJobs < 0 { problems.append("limits.maxCompletedJobs must not be negative") }
        if limits.maxJobs < 1 { problems.append("limits.maxJobs must be at least 1") }
        if limits.maxJobBytes < maxFrameSize { problems.append("limits.maxJobBytes must be at least maxFrameSize (\(maxFrameSize))") }
        if limits.maxLocks < 1 { problems.append("limits.maxLocks must be at least 1") }
        if limits.maxClients < 1 { problems.append("limits.maxClients must be at least 1") }
        if limits.maxClientsPerUser < 0 { problems.append("limits.maxClientsPerUser must be 0 (a quarter of maxClients) or more") }
        if limits.maxSchedules < 0 { problems.append("limits.maxSchedules must not be negative") }
        if let dir = dataDirectory, dir.isEmpty { problems.append("dataDirectory must not be empty") }
        if snapshotEveryEntries < 100 { problems.append("snapshotEveryEntries must be at least 100") }
        if snapshotEveryBytes < 65536 { problems.append("snapshotEveryBytes must be at least 65536") }
        if segmentSizeBytes < 4096 { problems.append("segmentSizeBytes must be at least 4096") }
        if slowLogWriteMilliseconds < 1 { problems.append("slowLogWriteMilliseconds must be at least 1") }
        if peerTLS != nil && cluster == nil { problems.append("peerTLS needs a cluster") }
        if let cluster {
            if membership == nil { problems.append("nodeID \(nodeID) is not in cluster") }
            if Set(cluster.map(\.nodeID)).count != cluster.count { problems.append("cluster names a nodeID twice") }
            if ![1, 3, 5, 7].contains(cluster.count) { problems.append("cluster must have 1, 3, 5 or 7 members") }
            if dataDirectory == nil { problems.append("a cluster member needs a dataDirectory") }
            if let mine = cluster.first(where: { $0.nodeID == nodeID }), let theirs = mine.http2Port, theirs != http2Port {
                problems.append("cluster gives \(nodeID) http2Port \(theirs), but its own http2Port is \(http2Port.map(String.init) ?? "not set")")
            }
        }
        if !(1...1000).contains(tickMilliseconds) { problems.append("tickMilliseconds must be in 1...1000") }
        if absentClientGraceMilliseconds < 1 { problems.append("absentClientGraceMilliseconds must be at least 1") }
        return problems
    }

    var stateMachine: StateMachine.Configuration {
        var c = StateMachine.Configuration()
        c.maxKeyLength = limits.maxKeyLength
        c.minTTL = Milliseconds(limits.minTTLMilliseconds)
        c.maxTTL = Milliseconds(limits.maxTTLMilliseconds)
        c.maxWait = Milliseconds(limits.maxWaitMilliseconds)
        c.defaultJobTimeout = Milliseconds(limits.defaultJobTimeoutMilliseconds)
        c.defaultMaxAttempts = limits.defaultMaxAttempts
        c.defaultBackoff = Milliseconds(limits.defaultBackoffMilliseconds)
        c.completedRetention = Milliseconds(limits.completedRetentionMilliseconds)
        c.maxCompletedJobs = limits.maxCompletedJobs
        c.maxJobs = limits.maxJobs
        c.maxJobBytes = limits.maxJobBytes
        c.maxLocks = limits.maxLocks
        c.maxClients = limits.maxClients
        c.maxClientsPerUser = limits.maxClientsPerUser
        c.maxSchedules = limits.maxSchedules
        return c
    }
}

/// A configuration that cannot be used: what kind (to match on), and a message that names the problem.
public struct ConfigurationError: Error, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Not JSON, or not an object at the top.
        case notJSON
        /// A key this version does not know (a misspelling would otherwise be ignored).
        case unknownKey
        /// A value of the wrong type.
        case wrongType
        /// The node was started in a way its configuration does not allow.
        case notAClusterMember
        /// A file the configuration names cannot be read or holds no usable value.
        case unreadableFile
    }

    public var code: Code
    public var description: String
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}

extension NodeConfiguration {
    /// Reads a JSON configuration. Unknown keys are refused (a misspelt key would otherwise be ignored
    /// silently), and so are values of the wrong type.
    public static func decode(json: Data) throws -> NodeConfiguration {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json)
        } catch {
            throw ConfigurationError(.notJSON, "not valid JSON: \(error.localizedDescription)")
        }
        guard let top = object as? [String: Any] else { throw ConfigurationError(.notJSON, "the top level must be an object") }
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        var unknown = top.keys.filter { !known.contains($0) }.sorted()
        if let limits = top["limits"] as? [String: Any] {
            let knownLimits = Set(Limits.CodingKeys.allCases.map(\.stringValue))
            unknown += limits.keys.filter { !knownLimits.contains($0) }.sorted().map { "limits.\($0)" }
        }
        if let tls = top["tls"] as? [String: Any] {
            // A misspelt clientCAFile would silently turn client certificates off.
            let knownTLS = Set(ClientTLS.CodingKeys.allCases.map(\.stringValue))
            unknown += tls.keys.filter { !knownTLS.contains($0) }.sorted().map { "tls.\($0)" }
        }
        if let peerTLS = top["peerTLS"] as? [String: Any] {
            let knownPeerTLS = Set(PeerTLS.CodingKeys.allCases.map(\.stringValue))
            unknown += peerTLS.keys.filter { !knownPeerTLS.contains($0) }.sorted().map { "peerTLS.\($0)" }
        }
        if let auth = top["auth"] as? [String: Any] {
            let knownAuth = Set(AuthConfiguration.CodingKeys.allCases.map(\.stringValue))
            unknown += auth.keys.filter { !knownAuth.contains($0) }.sorted().map { "auth.\($0)" }
        }
        guard unknown.isEmpty else {
            throw ConfigurationError(.unknownKey, "unknown key\(unknown.count == 1 ? "" : "s"): \(unknown.joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(NodeConfiguration.self, from: json)
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigurationError(.wrongType, "'\(path)' must be \(type)")
        } catch {
            throw ConfigurationError(.wrongType, "\(error)")
        }
    }
}
