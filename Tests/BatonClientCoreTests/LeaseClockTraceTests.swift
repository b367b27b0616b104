import BatonClientCore
import BatonProtocol
import Foundation
import Testing

/// `LeaseClock` against the checked-in trace both clients replay (`Clients/testdata/lease-clock.trace`,
/// also read by the Python client's `test_traces.py`), so the two languages cannot drift apart.
/// `BATON_REWRITE_TRACES=1 swift test --filter LeaseClockTraceTests` writes its decisions anew.
@Suite struct LeaseClockTraceTests {
    @Test func theSwiftCoreDecidesAsTheTraceSays() throws {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Clients/testdata/lease-clock.trace")
        let expected = try String(contentsOf: file, encoding: .utf8)
        let replayed = try Self.replay(expected)
        if ProcessInfo.processInfo.environment["BATON_REWRITE_TRACES"] != nil {
            try replayed.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let got = replayed.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(want.count == got.count, "the trace has \(want.count) lines, the replay \(got.count)")
        for (i, (w, g)) in zip(want, got).enumerated() {
            #expect(w == g, "lease-clock.trace line \(i + 1): expected \"\(w)\", got \"\(g)\" (BATON_REWRITE_TRACES=1 rewrites it)")
        }
    }

    /// The trace's events run through `LeaseClock`, each followed by its decisions (earlier "> "
    /// lines are dropped and written again).
    static func replay(_ trace: String) throws -> String {
        var out: [String] = []
        var clock: LeaseClock<TraceInstant>?
        for line in trace.split(separator: "\n", omittingEmptySubsequences: false) where !line.hasPrefix(">") {
            out.append(String(line))
            let words = line.split(separator: " ")
            guard let event = words.first, !event.hasPrefix("#") else { continue }
            var fields: [String: Int64] = [:]
            for word in words.dropFirst() {
                let pair = word.split(separator: "=")
                if pair.count == 2, let value = Int64(pair[1]) { fields[String(pair[0])] = value }
            }
            func field(_ name: String) throws -> Int64 {
                try #require(fields[name], "line \"\(line)\" lacks \(name)=")
            }
            switch event {
            case "grant":
                let ttl = try field("ttl")
                try #require(ttl % 30 == 0, "a trace's ttl is a multiple of 30 ms, so its tenth and third are whole ms")
                let c = LeaseClock(
                    ttl: .milliseconds(ttl), sent: TraceInstant(try field("sent")), leaseLeft: Milliseconds(UInt32(try field("left"))))
                clock = c
                out.append("> valid_until=\(c.validUntil.ms) stop_at=\(c.stopAt.ms) renew_every=\(c.renewEvery.ms)")
            case "renewed":
                var c = try #require(clock, "renewed before a grant")
                c.renewed(sent: TraceInstant(try field("sent")), leaseLeft: Milliseconds(UInt32(try field("left"))))
                clock = c
                out.append("> valid_until=\(c.validUntil.ms) stop_at=\(c.stopAt.ms)")
            case "at":
                let c = try #require(clock, "at before a grant")
                let now = TraceInstant(try #require(Int64(words[1]), "at <ms>"))
                out.append("> holds=\(c.holds(at: now)) needs_confirming=\(c.needsConfirming(at: now))")
            default:
                Issue.record("unknown event in the trace: \(line)")
            }
        }
        return out.joined(separator: "\n")
    }
}

/// An instant of the trace: milliseconds from its start.
struct TraceInstant: InstantProtocol {
    var offset: Duration

    init(_ milliseconds: Int64) { offset = .milliseconds(milliseconds) }
    private init(offset: Duration) { self.offset = offset }

    func advanced(by duration: Duration) -> TraceInstant { TraceInstant(offset: offset + duration) }
    func duration(to other: TraceInstant) -> Duration { other.offset - offset }
    static func < (a: TraceInstant, b: TraceInstant) -> Bool { a.offset < b.offset }

    var ms: Int64 { offset.ms }
}

extension Duration {
    /// Whole milliseconds (a trace's times are whole).
    var ms: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
