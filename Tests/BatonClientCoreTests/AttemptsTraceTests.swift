import BatonClientCore
import Testing

/// `Attempts` against `Clients/testdata/attempts.trace`, which the Python client replays too.
@Suite struct AttemptsTraceTests {
    @Test func theSwiftCoreDecidesAsTheTraceSays() throws {
        var attempts: Attempts<ManualInstant>?
        try ClientTrace.check("attempts.trace") { event, fields in
            switch event {
            case "request":
                let a = Attempts(
                    now: ManualInstant(try fields.number("at")), wait: .milliseconds(try fields.number("wait")),
                    retryTimeout: .milliseconds(try fields.number("retry_timeout")))
                attempts = a
                return ["> give_up=\(a.giveUp.ms)"]
            case "failed":
                var a = try #require(attempts, "failed before a request")
                let failure: AttemptFailure
                switch try #require(fields.word, "failed <why>") {
                case "not_leader": failure = .notLeader(leader: fields.text("leader"))
                case "connection_lost": failure = .connectionLost
                case "shutting_down": failure = .shuttingDown
                case "timed_out": failure = .timedOut
                case "unauthenticated_while_connecting": failure = .unauthenticatedWhileConnecting
                case "final": failure = .final
                case let other:
                    Issue.record("unknown failure in the trace: \(other)")
                    return []
                }
                let next = a.after(failure, at: ManualInstant(try fields.number("at")))
                attempts = a
                guard let next else { return ["> fail"] }
                let route: String
                switch next.route {
                case .stay: route = "stay"
                case .nextEndpoint: route = "next"
                case .leader(let leader): route = "leader:\(leader)"
                }
                return ["> retry delay=\(next.delay.ms) reconnect=\(next.reconnect) route=\(route)"]
            default:
                Issue.record("unknown event in the trace: \(fields.line)")
                return []
            }
        }
    }
}
