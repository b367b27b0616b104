import BatonProtocol
import Testing

@testable import BatonServer

/// The request rules both transports share (`ClientSession`).
@Suite struct ClientSessionTests {
    let acquire = Command.acquireLock(key: "k", owner: "o", ttl: 1000, wait: 0)

    func hello(_ client: UInt64, version: UInt16 = batonProtocolVersion) -> Request {
        .hello(Hello(version: version, clientID: ClientID(client), clientName: "test"))
    }

    @Test func overTCPNothingButHelloAndPingBeforeHello() {
        var session = ClientSession(identity: .perConnection)
        #expect(session.receive(.ping, opcode: .ping) == .ping)
        #expect(session.receive(.query(.getLock(key: "k")), opcode: .lockGet) == .refuse(.helloRequired, "send HELLO before LOCK_GET"))
        #expect(session.receive(.command(SequenceNumber(1), acquire), opcode: .lockAcquire) == .refuse(.helloRequired, "send HELLO before LOCK_ACQUIRE"))
        #expect(session.receive(hello(7), opcode: .hello) == .hello(joined: ClientID(7), left: nil))
        #expect(session.receive(.command(SequenceNumber(1), acquire), opcode: .lockAcquire) == .command(ClientID(7), SequenceNumber(1), acquire, joined: false))
        #expect(session.receive(.query(.getLock(key: "k")), opcode: .lockGet) == .read(.getLock(key: "k")))
    }

    @Test func overTCPASecondHelloReplacesTheClient() {
        var session = ClientSession(identity: .perConnection)
        _ = session.receive(hello(7), opcode: .hello)
        #expect(session.receive(hello(7), opcode: .hello) == .hello(joined: nil, left: nil))
        #expect(session.receive(hello(8), opcode: .hello) == .hello(joined: ClientID(8), left: ClientID(7)))
        #expect(session.client == ClientID(8))
        #expect(session.clients == [ClientID(8)])
    }

    /// HELLO carries the newest version a client speaks; the session uses the newest both speak.
    @Test func helloAgreesOnTheNewestVersionBothSpeak() {
        for (asked, agreed) in [(UInt16(2), UInt16(2)), (3, 3), (99, batonProtocolVersion)] {
            var session = ClientSession(identity: .perConnection)
            #expect(session.version == 2)
            #expect(session.receive(hello(7, version: asked), opcode: .hello) == .hello(joined: ClientID(7), left: nil))
            #expect(session.version == agreed, "asked \(asked)")
        }
    }

    @Test func anUnsupportedVersionClosesATCPConnectionButOnlyRefusesAStream() {
        var tcp = ClientSession(identity: .perConnection)
        guard case .refuseAndClose(.unsupportedVersion, _) = tcp.receive(hello(7, version: 1), opcode: .hello) else {
            Issue.record("TCP did not close on an unsupported version")
            return
        }
        #expect(tcp.client == nil)
        var h2 = ClientSession(identity: .perRequest)
        guard case .refuse(.unsupportedVersion, _) = h2.receive(hello(7, version: 1), opcode: .hello) else {
            Issue.record("HTTP/2 did not refuse an unsupported version")
            return
        }
        #expect(h2.clients.isEmpty)
    }

    @Test func overHTTP2EachCommandNamesItsClient() {
        var session = ClientSession(identity: .perRequest)
        #expect(session.receive(.query(.getLock(key: "k")), opcode: .lockGet) == .read(.getLock(key: "k")))
        #expect(session.receive(.command(SequenceNumber(1), acquire), opcode: .lockAcquire) == .refuse(.helloRequired, "commands need the baton-client-id header"))
        #expect(session.receive(.command(SequenceNumber(1), acquire), opcode: .lockAcquire, named: ClientID(5)) == .command(ClientID(5), SequenceNumber(1), acquire, joined: true))
        #expect(session.receive(.command(SequenceNumber(2), acquire), opcode: .lockAcquire, named: ClientID(5)) == .command(ClientID(5), SequenceNumber(2), acquire, joined: false))
        #expect(session.receive(.command(SequenceNumber(1), acquire), opcode: .lockAcquire, named: ClientID(6)) == .command(ClientID(6), SequenceNumber(1), acquire, joined: true))
        #expect(session.clients == [ClientID(5), ClientID(6)])
    }
}
