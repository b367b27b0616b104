import Testing

@testable import BatonServer

@Suite struct ConnectionAdmissionTests {
    @Test func pendingConnectionsAreCappedPerHostAndLeaveAnEighthForFinishedOnes() {
        var a = ConnectionAdmission(maxConnections: 16, maxPendingPerHost: 4)
        #expect(a.maxPending == 14)
        for _ in 0..<4 { #expect(a.arrive(from: "10.0.0.1") == .admit) }
        guard case .refuse(let why) = a.arrive(from: "10.0.0.1") else { Issue.record("a fifth pending connection from one host"); return }
        #expect(why.contains("maxPendingConnectionsPerHost"))
        // Other hosts fill the pending share, then are refused although connections remain.
        for host in 2...11 { #expect(a.arrive(from: "10.0.0.\(host)") == .admit) }
        guard case .refuse = a.arrive(from: "10.0.0.99") else { Issue.record("pending past seven eighths"); return }
        // A finished handshake makes room for one more pending connection, and counts toward the total.
        a.handshakeCompleted(from: "10.0.0.1")
        #expect(a.arrive(from: "10.0.0.1") == .admit)
        #expect(a.total == 15 && a.pending == 14)
        // A pending connection that leaves frees both counts.
        a.left(from: "10.0.0.2", stillPending: true)
        #expect(a.total == 14 && a.pending == 13)
        a.left(from: "10.0.0.1", stillPending: false)
        #expect(a.total == 13 && a.pending == 13)
    }

    @Test func theTotalCapsEveryConnection() {
        var a = ConnectionAdmission(maxConnections: 2, maxPendingPerHost: 10)
        #expect(a.arrive(from: "h") == .admit)
        a.handshakeCompleted(from: "h")
        #expect(a.arrive(from: "h") == .admit)
        a.handshakeCompleted(from: "h")
        guard case .refuse(let why) = a.arrive(from: "h") else { Issue.record("past maxConnections"); return }
        #expect(why.contains("maxConnections"))
    }
}
