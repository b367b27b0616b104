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

    /// Item 7: an anonymous client that says HELLO and leaves, or sends a command it may not over
    /// TCP or HTTP/2, costs the log nothing. Before, each HELLO + close wrote a durable detach entry
    /// (1,000 of them: 1,000 entries, 74 KB of log), and each refused HTTP/2 request one more.
    @Test func anonymousClientsCostTheLogNothing() async throws {
        try await withAuthNode { node in
            let admin = node.client(token: node.adminToken)
            defer { Task { await admin.shutdown() } }
            let before = try await admin.nodeStatus().appliedIndex
            for i in 0..<300 {
                let raw = try await RawConnection(port: node.port)
                try await raw.send(.hello(Hello(version: batonProtocolVersion, clientID: ClientID(1000 + UInt64(i)), clientName: "anon")), id: 1)
                try await raw.send(.command(SequenceNumber(1), .acquireLock(key: "k", owner: "o", ttl: Milliseconds(5000), wait: Milliseconds(5000))), id: 2)
                let replies = try await raw.nextReplies(2)
                #expect(errorCode(try #require(replies[2])) == .unauthenticated)
                await raw.close()
            }
            for i in 0..<100 {
                let h2 = try RawHTTP2(port: node.http2Port)
                h2.request("job_add", stream: 1, endStream: false, clientID: String(format: "%016x", 5000 + i))
                var body = ByteBuffer()
                Request.command(SequenceNumber(1), .addJob(JobSpec(type: "t"))).encodeBody(into: &body)
                h2.data(Array(body.readableBytesView), stream: 1, endStream: true)
                let frames = h2.frames { $0.type == RawHTTP2.Frame.data && $0.stream == 1 }
                #expect(RawHTTP2.errorCode(on: 1, in: frames) == .unauthenticated)
            }
            // Every connection above is closed: the node has seen them go.
            for _ in 0..<1000 where try await admin.nodeStatus().connections > 1 { try await Task.sleep(for: .milliseconds(10)) }
            let after = try await admin.nodeStatus().appliedIndex
            #expect(after == before, "anonymous clients wrote \(after - before) log entries")
        }
    }
}
