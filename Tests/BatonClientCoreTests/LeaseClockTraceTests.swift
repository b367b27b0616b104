import BatonClientCore
import BatonProtocol
import Testing

/// `LeaseClock` against `Clients/testdata/lease-clock.trace`, which the Python client replays too.
@Suite struct LeaseClockTraceTests {
    @Test func theSwiftCoreDecidesAsTheTraceSays() throws {
        var clock: LeaseClock<ManualInstant>?
        try ClientTrace.check("lease-clock.trace") { event, fields in
            switch event {
            case "grant":
                let ttl = try fields.number("ttl")
                try #require(ttl % 30 == 0, "a trace's ttl is a multiple of 30 ms, so its tenth and third are whole ms")
                let c = LeaseClock(
                    ttl: .milliseconds(ttl), sent: ManualInstant(try fields.number("sent")),
                    leaseLeft: Milliseconds(UInt32(try fields.number("left"))))
                clock = c
                return ["> valid_until=\(c.validUntil.ms) stop_at=\(c.stopAt.ms) renew_every=\(c.renewEvery.ms)"]
            case "renewed":
                var c = try #require(clock, "renewed before a grant")
                c.renewed(sent: ManualInstant(try fields.number("sent")), leaseLeft: Milliseconds(UInt32(try fields.number("left"))))
                clock = c
                return ["> valid_until=\(c.validUntil.ms) stop_at=\(c.stopAt.ms)"]
            case "at":
                let c = try #require(clock, "at before a grant")
                let now = ManualInstant(try #require(fields.word.flatMap { Int64($0) }, "at <ms>"))
                return ["> holds=\(c.holds(at: now)) needs_confirming=\(c.needsConfirming(at: now))"]
            default:
                Issue.record("unknown event in the trace: \(fields.line)")
                return []
            }
        }
    }
}
