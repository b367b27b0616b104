import BatonClientCore
import BatonProtocol
import Testing

/// `Session` against `Clients/testdata/session.trace`, which the Python client replays too.
@Suite struct SessionTraceTests {
    @Test func theSwiftCoreDecidesAsTheTraceSays() throws {
        var session: Session?
        try ClientTrace.check("session.trace") { event, fields in
            if event == "session" {
                let endpoints = try #require(fields.text("endpoints"), "session endpoints=<a,b,…>")
                session = Session(clientID: ClientID(1), endpoints: endpoints.split(separator: ",").map(String.init))
                return []
            }
            var s = try #require(session, "\(event) before a session")
            defer { session = s }
            switch event {
            case "sequence":
                return ["> sequence=\(s.nextSequence().rawValue)"]
            case "request_id":
                return ["> request_id=\(s.nextRequestID().rawValue)"]
            case "candidates":
                return ["> candidates=\(s.candidates().joined(separator: ","))"]
            case "connected":
                s.connected(to: String(try #require(fields.word, "connected <endpoint>")))
            case "redirect":
                s.redirect(to: fields.text("leader"))
            case "rotate":
                s.rotate()
            default:
                Issue.record("unknown event in the trace: \(fields.line)")
            }
            return []
        }
    }
}
