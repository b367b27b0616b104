import BatonCore
import BatonProtocol

/// Everything a node needs to run. Every field has a default that suits one node on a laptop.
public struct NodeConfiguration: Sendable, Hashable, Codable {
    /// This node's name, reported in HELLO and in logs.
    public var nodeID: String = "baton-1"
    /// Address the client listener binds to.
    public var host: String = "127.0.0.1"
    /// Port of the client listener; 0 picks a free one.
    public var port: Int = 7700
    /// The largest frame a client may send, in bytes (the length field's value).
    public var maxFrameSize: Int = Frame.defaultMaxSize
    /// A connection that sends nothing for this long, and waits on nothing, is closed.
    public var idleTimeoutMilliseconds: UInt32 = 300_000
    /// Limits and defaults of locks and jobs.
    public var limits: Limits = Limits()

    /// The state machine's limits and defaults, as written in a configuration file.
    public struct Limits: Sendable, Hashable, Codable {
        public var maxKeyLength: Int = 256
        public var minTTLMilliseconds: UInt32 = 100
        public var maxTTLMilliseconds: UInt32 = 86_400_000
        public var maxWaitMilliseconds: UInt32 = 3_600_000
        public var defaultJobTimeoutMilliseconds: UInt32 = 60_000
        public var defaultMaxAttempts: UInt16 = 5
        public var defaultBackoffMilliseconds: UInt32 = 1_000
        public var completedRetentionMilliseconds: UInt32 = 3_600_000
        public init() {}
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        // Every key is optional: a file names only what it changes.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeConfiguration()
        nodeID = try c.decodeIfPresent(String.self, forKey: .nodeID) ?? d.nodeID
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? d.host
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? d.port
        maxFrameSize = try c.decodeIfPresent(Int.self, forKey: .maxFrameSize) ?? d.maxFrameSize
        idleTimeoutMilliseconds = try c.decodeIfPresent(UInt32.self, forKey: .idleTimeoutMilliseconds) ?? d.idleTimeoutMilliseconds
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits) ?? d.limits
    }

    /// Checks every rule; returns one message per broken rule.
    public func validate() -> [String] {
        var problems: [String] = []
        if nodeID.isEmpty { problems.append("nodeID must not be empty") }
        if !(0...65535).contains(port) { problems.append("port \(port) is outside 0...65535") }
        if maxFrameSize < 1024 || maxFrameSize > Frame.defaultMaxSize * 16 {
            problems.append("maxFrameSize \(maxFrameSize) is outside 1024...\(Frame.defaultMaxSize * 16)")
        }
        if idleTimeoutMilliseconds < 1000 { problems.append("idleTimeoutMilliseconds must be at least 1000") }
        if limits.minTTLMilliseconds == 0 { problems.append("limits.minTTLMilliseconds must be above zero") }
        if limits.minTTLMilliseconds > limits.maxTTLMilliseconds {
            problems.append("limits.minTTLMilliseconds exceeds limits.maxTTLMilliseconds")
        }
        if !(1...4096).contains(limits.maxKeyLength) { problems.append("limits.maxKeyLength must be in 1...4096") }
        if limits.defaultMaxAttempts == 0 { problems.append("limits.defaultMaxAttempts must be above zero") }
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
        return c
    }
}
