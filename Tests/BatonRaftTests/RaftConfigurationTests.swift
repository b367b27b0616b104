import BatonRaft
import Testing

@Suite struct RaftConfigurationTests {
    @Test func aValidConfigurationHasNoErrors() {
        #expect(RaftConfiguration(members: [NodeIndex(1)]).validate().isEmpty)
        var three = RaftConfiguration(members: [NodeIndex(1), NodeIndex(2), NodeIndex(3)])
        three.electionTicks = 15
        three.heartbeatTicks = 2
        #expect(three.validate().isEmpty)
    }

    /// One precise error per broken rule, all of them at once.
    @Test func everyBrokenRuleIsNamedOnce() {
        #expect(RaftConfiguration(members: []).validate() == [.noMembers])
        var c = RaftConfiguration(members: [NodeIndex(1), NodeIndex(0), NodeIndex(1)])
        c.heartbeatTicks = 0
        c.electionTicks = 0
        c.maxEntriesPerAppend = 0
        c.maxBytesPerAppend = -1
        c.maxInflightAppends = 0
        #expect(c.validate() == [
            .memberZero, .memberTwice(NodeIndex(1)), .heartbeatTicksBelowOne(0),
            .electionNotAfterHeartbeat(election: 0, heartbeat: 0), .maxEntriesPerAppendBelowOne(0),
            .maxBytesPerAppendBelowOne(-1), .maxInflightAppendsBelowOne(0),
        ])
        var slow = RaftConfiguration(members: [NodeIndex(1)])
        slow.heartbeatTicks = 10
        #expect(slow.validate().map(\.description) == ["electionTicks 10 must be above heartbeatTicks 10"])
    }
}
