import BatonClientCore
import Testing

/// `Pacing` against `Clients/testdata/pacing.trace`, which the Python client replays too.
@Suite struct PacingTraceTests {
    @Test func theSwiftCoreDecidesAsTheTraceSays() throws {
        try ClientTrace.check("pacing.trace") { event, fields in
            switch event {
            case "claim_failed":
                return ["> retry_after=\(Pacing.afterFailedClaim.ms)"]
            case "lost_lock":
                return ["> retry_after=\(Pacing.afterLostLock.ms)"]
            case "next_slot":
                let every = Duration.milliseconds(try fields.number("every"))
                return ["> sleep=\(Pacing.untilNextSlot(every: every, wallMilliseconds: try fields.number("wall")).ms)"]
            default:
                Issue.record("unknown event in the trace: \(fields.line)")
                return []
            }
        }
    }
}
