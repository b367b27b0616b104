import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import BatonServer

#if canImport(Glibc)
import Glibc
#endif

/// The attacks of the second security campaign (issue 33), each performed as described against a
/// real `baton serve` run as the unprivileged user.
@Suite(.heavy, .timeLimit(.minutes(3))) struct SecurityTests {
    /// Item 1: a client that loops HELLO + USER_ADD + TOKEN_ADD + USER_GRANT root from the moment a
    /// fresh secured node opens its port never becomes root: until its admin token is applied the
    /// node takes no command. Before, the loop won within the first ~60 ms (the campaign: 2 of 2).
    @Test func nobodyBecomesRootWhileAFreshNodeStarts() async throws {
        let node = try await AuthNode()
        defer { node.destroy() }
        let racerToken = TokenHash.newToken()
        let stop = NIOLockedValueBox(false)
        let attempts = NIOLockedValueBox(0)
        let port = node.port
        let racer = Thread {
            var batch = ByteBuffer()
            var sequence: UInt64 = 0
            func add(_ request: Request, _ id: UInt32) { batch.writeRequest(request, requestID: RequestID(id)) }
            while !stop.withLockedValue({ $0 }) {
                guard let fd = try? rawConnect(port: port) else { continue }
                for _ in 0..<200 {
                    batch.clear()
                    sequence += 3
                    add(.hello(Hello(version: batonProtocolVersion, clientID: ClientID(7), clientName: "racer")), 1)
                    add(.command(SequenceNumber(sequence), .addUser(name: "racer")), 2)
                    add(.command(SequenceNumber(sequence + 1), .addToken(user: "racer", hash: TokenHash(of: racerToken))), 3)
                    add(.command(SequenceNumber(sequence + 2), .grantRole(user: "racer", role: "root")), 4)
                    let sent = batch.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if sent <= 0 { break }
                    attempts.withLockedValue { $0 += 1 }
                }
                close(fd)
            }
        }
        racer.start()
        try await node.start()  // returns once the admin token works
        // Race on a little longer, then look.
        let more = attempts.withLockedValue { $0 } + 500
        while attempts.withLockedValue({ $0 }) < more { try await Task.sleep(for: .milliseconds(5)) }
        stop.withLockedValue { $0 = true }
        while !racer.isFinished { try await Task.sleep(for: .milliseconds(5)) }
        #expect(attempts.withLockedValue { $0 } > 500, "the premise: the racer sent its commands")
        let admin = node.client(token: node.adminToken)
        let listing = try await admin.authListing()
        await admin.shutdown()
        #expect(!listing.users.contains { $0.name == "racer" }, "an anonymous client made a user during start-up: \(listing.users)")
        let racing = node.client(token: racerToken, retryTimeout: .zero)
        #expect(await serverError { _ = try await racing.nodeStatus() }?.code == .unauthenticated)
        await racing.shutdown()
    }
}
