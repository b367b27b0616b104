import BatonProtocol
import NIOCore
import Testing

@testable import BatonCore

/// A sequence number names one request: a retry must carry the same request, and another request under
/// it is refused with `SEQUENCE_REUSED` (PROTOCOL.md §5), not answered with the first one's reply.
@Suite struct SequenceReuseTests {
    let client = ClientID(1)
    let five = SequenceNumber(5)

    @Test func anotherOpcodeUnderAnsweredSequenceIsRefused() {
        var h = Harness()
        let added = h.send(.addJob(JobSpec(type: "t")), client: client, sequence: five)
        guard case .jobAdded = added else { Issue.record("add failed: \(String(describing: added))"); return }
        let reused = h.send(.acquireLock(key: "k", owner: "o", ttl: 1000, wait: 0), client: client, sequence: five)
        #expect(errorCode(reused) == .sequenceReused)
        #expect(h.query(.getLock(key: "k")) == .lock(nil))  // not applied
        // The first request's retries still get its answer.
        #expect(h.send(.addJob(JobSpec(type: "t")), client: client, sequence: five) == added)
    }

    @Test func sameOpcodeWithOtherFieldsIsRefused() {
        var h = Harness()
        _ = h.send(.addJob(JobSpec(type: "t", payload: [1])), client: client, sequence: five)
        #expect(errorCode(h.send(.addJob(JobSpec(type: "t", payload: [2])), client: client, sequence: five)) == .sequenceReused)
        #expect(errorCode(h.send(.addJob(JobSpec(type: "u", payload: [1])), client: client, sequence: five)) == .sequenceReused)
        #expect(h.machine.jobs.count == 1)
    }

    @Test func rememberedErrorsAreCheckedToo() {
        var h = Harness()
        let stale = h.send(.releaseLock(key: "k", token: FencingToken(9)), client: client, sequence: five)
        #expect(errorCode(stale) == .staleToken)
        #expect(h.send(.releaseLock(key: "k", token: FencingToken(9)), client: client, sequence: five) == stale)
        #expect(errorCode(h.send(.releaseLock(key: "k", token: FencingToken(8)), client: client, sequence: five)) == .sequenceReused)
    }

    @Test func aWaitingCommandRefusesAnotherUnderItsSequence() {
        var h = Harness()
        _ = h.grantedToken("k", client: ClientID(2))
        let wait = Command.acquireLock(key: "k", owner: "o", ttl: 1000, wait: 5000)
        #expect(h.send(wait, client: client, sequence: five) == nil)
        #expect(h.send(wait, client: client, sequence: five) == nil)  // the same retry still waits
        let other = h.send(.acquireLock(key: "k", owner: "o", ttl: 2000, wait: 5000), client: client, sequence: five)
        #expect(errorCode(other) == .sequenceReused)
        let claim = h.send(.claimJob(types: ["t"], worker: "w", wait: 5000), client: client, sequence: SequenceNumber(6))
        #expect(claim == nil)
        #expect(errorCode(h.send(.claimJob(types: ["u"], worker: "w", wait: 5000), client: client, sequence: SequenceNumber(6))) == .sequenceReused)
        // Settled waits keep their digest with the answer they got.
        h.advance(5000)
        #expect(h.completions.count == 2)
        #expect(errorCode(h.send(.claimJob(types: ["u"], worker: "w", wait: 5000), client: client, sequence: SequenceNumber(6))) == .sequenceReused)
        #expect(h.send(.claimJob(types: ["t"], worker: "w", wait: 5000), client: client, sequence: SequenceNumber(6)) == .jobClaimed(nil))
        #expect(errorCode(other) == .sequenceReused)
    }

    @Test func digestsSurviveASnapshotAndVersionOneLeavesThemOut() throws {
        var h = Harness()
        _ = h.grantedToken("k", client: ClientID(2))
        _ = h.send(.addJob(JobSpec(type: "t")), client: client, sequence: five)
        #expect(h.send(.acquireLock(key: "k", owner: "o", ttl: 1000, wait: 5000), client: client, sequence: SequenceNumber(6)) == nil)
        #expect(h.send(.claimJob(types: ["t2"], worker: "w", wait: 5000), client: client, sequence: SequenceNumber(7)) == nil)
        let reuses: [(SequenceNumber, Command)] = [
            (five, .addJob(JobSpec(type: "other"))),
            (SequenceNumber(6), .acquireLock(key: "k", owner: "x", ttl: 1000, wait: 5000)),
            (SequenceNumber(7), .claimJob(types: ["t3"], worker: "w", wait: 5000)),
        ]

        var restored = try StateMachine(restoring: h.machine.snapshot())
        #expect(restored.snapshot() == h.machine.snapshot())
        for (sequence, command) in reuses {
            #expect(errorCode(restored.apply(.command(client, sequence, command), at: h.time).reply) == .sequenceReused)
        }

        // Format 1 (for a member of an older build) has no digests: every retry gets the remembered
        // answer or keeps waiting, as before digests existed.
        let v1 = Array(h.machine.snapshot(version: 1).readableBytesView)
        #expect(v1[5] == 1)
        #expect(try StateMachine.snapshot(Array(h.machine.snapshot().readableBytesView), readableBy: 1) == v1)
        #expect(try StateMachine.snapshot(v1, readableBy: 2) == v1)
        var old = try StateMachine(restoring: ByteBuffer(bytes: v1))
        #expect(old.apply(.command(client, five, reuses[0].1), at: h.time).reply == h.send(.addJob(JobSpec(type: "t")), client: client, sequence: five))
        #expect(old.apply(.command(client, SequenceNumber(6), reuses[1].1), at: h.time).reply == nil)
        #expect(old.apply(.command(client, SequenceNumber(7), reuses[2].1), at: h.time).reply == nil)
    }

    @Test func digestIsStableAcrossRuns() {
        // Stored in snapshots and compared across members: a fixed function of the wire bytes. The
        // value is 64-bit FNV-1a of `12 0001 6b 0000000000000001` (opcode, key "k", token 1), computed
        // apart from this code.
        var scratch = ByteBuffer()
        #expect(CommandDigest(.releaseLock(key: "k", token: FencingToken(1)), using: &scratch).rawValue == 0x93a4_d2ea_7ce9_dd80)
        #expect(scratch.readableBytes == 0)
    }
}
