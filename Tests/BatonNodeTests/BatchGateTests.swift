import BatonProtocol
import Testing

@testable import BatonNode

/// During a rolling upgrade a leader logs no batch command that a member of an older build could
/// not read (issue 38): it answers UNKNOWN_OPCODE, as an older node does, until every member agreed
/// peer protocol 8.
@Suite struct BatchGateTests {
    static let batches: [Command] = [
        .addJobs([JobSpec(type: "t")]), .claimJobs(types: ["t"], worker: "w", max: 4),
    ]

    @Test func aCompleteBatchWaitsForPeerProtocol9() throws {
        let batch = Command.completeJobs([JobCompletion(id: JobID(1), token: FencingToken(1))], claimMax: 1, types: ["t"], worker: "w")
        let refusal = try #require(Node.batchRefusal(batch, members: 3, peersLowest: Node.batchPeerProtocol))
        #expect(refusal.code == .unknownOpcode && refusal.message.contains("peer protocol 9"), "\(refusal.message)")
        #expect(Node.batchRefusal(batch, members: 3, peersLowest: Node.completeBatchPeerProtocol) == nil)
        #expect(Node.batchRefusal(batch, members: 1, peersLowest: 0) == nil)
    }

    @Test(arguments: batches)
    func aLeaderRefusesABatchUntilEveryMemberReadsIt(command: Command) throws {
        let refusal = try #require(Node.batchRefusal(command, members: 3, peersLowest: Node.batchPeerProtocol - 1))
        #expect(refusal.code == .unknownOpcode)
        #expect(refusal.message.contains("peer protocol \(Node.batchPeerProtocol)"), "\(refusal.message)")
        #expect(Node.batchRefusal(command, members: 3, peersLowest: 0) != nil, "members not heard from yet count as older")
        #expect(Node.batchRefusal(command, members: 3, peersLowest: Node.batchPeerProtocol) == nil)
        #expect(Node.batchRefusal(command, members: 1, peersLowest: 0) == nil, "a cluster of one waits for nobody")
    }

    @Test func otherCommandsAreNotHeldBack() {
        #expect(Node.batchRefusal(.addJob(JobSpec(type: "t")), members: 3, peersLowest: 0) == nil)
        #expect(Node.batchRefusal(.claimJob(types: ["t"], worker: "w", wait: .zero), members: 3, peersLowest: 0) == nil)
    }
}
