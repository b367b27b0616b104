import BatonNode
import BatonRaft

extension NodeConfiguration {
    /// The node's logic as this configuration sets it up: a member of its cluster, or a cluster of
    /// one when it has none.
    var node: Node.Configuration {
        var raft: RaftConfiguration
        var me = NodeIndex(1)
        var addresses: [NodeIndex: String] = [:]
        if let membership {
            raft = RaftConfiguration(members: membership.nodes)
            me = membership.me
            for node in membership.nodes { addresses[node] = membership[node]?.clientAddress }
        } else {
            raft = RaftConfiguration(members: [me])
        }
        raft.electionTicks = 15
        raft.heartbeatTicks = 2
        return Node.Configuration(
            nodeID: nodeID, raft: raft, me: me, clientAddresses: addresses, stateMachine: stateMachine,
            absentClientGraceMilliseconds: UInt64(absentClientGraceMilliseconds), snapshotEveryEntries: snapshotEveryEntries,
            snapshotEveryBytes: snapshotEveryBytes)
    }
}
