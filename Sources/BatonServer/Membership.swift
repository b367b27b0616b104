import BatonRaft

/// The cluster's members as Raft numbers them: the configured list's member at position p (from 0)
/// is node p + 1, on every member alike. The one place that converts between the two.
struct Membership: Sendable, Hashable {
    let members: [NodeConfiguration.ClusterMember]
    /// This node.
    let me: NodeIndex

    /// Nil when `nodeID` is not among `members`.
    init?(_ members: [NodeConfiguration.ClusterMember], me nodeID: String) {
        guard let position = members.firstIndex(where: { $0.nodeID == nodeID }) else { return nil }
        self.members = members
        self.me = Self.node(at: position)
    }

    private static func node(at position: Int) -> NodeIndex { NodeIndex(UInt64(position + 1)) }

    /// Every member's Raft index, in the configured order.
    var nodes: [NodeIndex] { members.indices.map(Self.node(at:)) }

    /// The member with Raft index `node`, if there is one.
    subscript(node: NodeIndex) -> NodeConfiguration.ClusterMember? {
        let position = Int(node.rawValue) - 1
        return members.indices.contains(position) ? members[position] : nil
    }

    /// This node's own entry.
    var mine: NodeConfiguration.ClusterMember { self[me]! }

    /// The other members, by Raft index.
    var peers: [NodeIndex: NodeConfiguration.ClusterMember] {
        Dictionary(uniqueKeysWithValues: nodes.filter { $0 != me }.map { ($0, self[$0]!) })
    }
}
