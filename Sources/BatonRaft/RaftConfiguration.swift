/// Static settings of one Raft node.
public struct RaftConfiguration: Sendable, Hashable {
    /// The cluster's members, this node included. Static: read from configuration at start.
    public var members: [NodeIndex]
    /// A follower campaigns after hearing nothing for a random number of ticks in
    /// `electionTicks ..< 2 × electionTicks`; a leader steps down after `electionTicks` without a quorum.
    public var electionTicks: Int = 10
    /// A leader sends heartbeats every `heartbeatTicks`.
    public var heartbeatTicks: Int = 1
    /// Most entries in one append.
    public var maxEntriesPerAppend: Int = 512
    /// Most bytes of entry data in one append (etcd-io/raft's MaxSizePerMsg); the first entry goes
    /// whatever its size. Keeps an append of large entries (a backlog of big job payloads for a
    /// follower catching up) far below the peer transport's frame limit.
    public var maxBytesPerAppend: Int = 1 << 20
    /// Most unacknowledged appends to one follower (pipelining).
    public var maxInflightAppends: Int = 64

    public init(members: [NodeIndex]) {
        self.members = members
    }

    public var quorum: Int { members.count / 2 + 1 }

    /// Every rule this configuration breaks, one error each (empty: valid).
    public func validate() -> [RaftConfigurationError] {
        var errors: [RaftConfigurationError] = []
        if members.isEmpty { errors.append(.noMembers) }
        if members.contains(.none) { errors.append(.memberZero) }
        var seen: Set<NodeIndex> = []
        for m in members where !seen.insert(m).inserted { errors.append(.memberTwice(m)) }
        if heartbeatTicks < 1 { errors.append(.heartbeatTicksBelowOne(heartbeatTicks)) }
        if electionTicks <= heartbeatTicks { errors.append(.electionNotAfterHeartbeat(election: electionTicks, heartbeat: heartbeatTicks)) }
        if maxEntriesPerAppend < 1 { errors.append(.maxEntriesPerAppendBelowOne(maxEntriesPerAppend)) }
        if maxBytesPerAppend < 1 { errors.append(.maxBytesPerAppendBelowOne(maxBytesPerAppend)) }
        if maxInflightAppends < 1 { errors.append(.maxInflightAppendsBelowOne(maxInflightAppends)) }
        return errors
    }
}

/// A rule a `RaftConfiguration` breaks.
public enum RaftConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    case noMembers
    /// Node index 0 means "no node" and cannot be a member.
    case memberZero
    case memberTwice(NodeIndex)
    case heartbeatTicksBelowOne(Int)
    /// A follower would time out between two heartbeats of a healthy leader.
    case electionNotAfterHeartbeat(election: Int, heartbeat: Int)
    case maxEntriesPerAppendBelowOne(Int)
    case maxBytesPerAppendBelowOne(Int)
    case maxInflightAppendsBelowOne(Int)

    public var description: String {
        switch self {
        case .noMembers: "members must not be empty"
        case .memberZero: "members must not contain node 0 (it means no node)"
        case .memberTwice(let m): "members names node \(m) twice"
        case .heartbeatTicksBelowOne(let n): "heartbeatTicks \(n) must be at least 1"
        case .electionNotAfterHeartbeat(let e, let h): "electionTicks \(e) must be above heartbeatTicks \(h)"
        case .maxEntriesPerAppendBelowOne(let n): "maxEntriesPerAppend \(n) must be at least 1"
        case .maxBytesPerAppendBelowOne(let n): "maxBytesPerAppend \(n) must be at least 1"
        case .maxInflightAppendsBelowOne(let n): "maxInflightAppends \(n) must be at least 1"
        }
    }
}
