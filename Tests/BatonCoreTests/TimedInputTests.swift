import BatonProtocol
import Testing

@testable import BatonCore

/// The log entry payload: every kind comes back as it went in; a cut or unknown entry is refused
/// with an error, never misread.
@Suite struct TimedInputTests {
    static let inputs: [StateMachineInput] = [
        .command(ClientID(7), SequenceNumber(3), .acquireLock(key: "k", owner: "o", ttl: 1000, wait: 500)),
        .tick,
        .detach(ClientID(7)),
        .withdraw(ClientID(7), SequenceNumber(3)),
    ]

    @Test(arguments: inputs) func roundTrips(_ input: StateMachineInput) throws {
        let timed = TimedInput(input, at: Timestamp(milliseconds: 1_234_567))
        #expect(try TimedInput.decode(timed.encode()) == timed)
    }

    @Test(arguments: inputs) func everyCutIsRefused(_ input: StateMachineInput) {
        let bytes = TimedInput(input, at: Timestamp(milliseconds: 42)).encode()
        for end in 0..<bytes.count {
            #expect(throws: SnapshotError.self) { try TimedInput.decode(Array(bytes[..<end])) }
        }
        #expect(throws: SnapshotError.self) { try TimedInput.decode(bytes + [0]) }
    }

    @Test func anUnknownKindIsRefused() {
        var bytes = TimedInput(.tick, at: Timestamp(milliseconds: 42)).encode()
        bytes[0] = 9
        let error = #expect(throws: SnapshotError.self) { try TimedInput.decode(bytes) }
        #expect(error?.code == .malformed)
    }
}
