import BatonProtocol
import BatonTestSupport
import NIOCore
import NIOPosix
import Testing

@testable import BatonClient

/// The client's connection, below `BatonClient`'s retries.
@Suite struct ConnectionTests {
    /// A request written to a connection that has closed (its node died a moment before) fails as
    /// `connectionClosed`, which the client retries with the same sequence number at the next member.
    /// It failed with SwiftNIO's own "I/O on closed channel", which no retry caught: found by
    /// `baton-bench schedules`, whose client put 10,000 schedules through a leader change.
    @Test func aWriteToAClosedConnectionFailsAsRetriable() async throws {
        try await withNode { node in
            let c = try await Connection.open(
                to: Endpoint(host: "127.0.0.1", port: node.port), transport: .tcp,
                hello: Hello(clientID: ClientID(5), clientName: "closed"), group: MultiThreadedEventLoopGroup.singleton,
                connectTimeout: .seconds(5), requestTimeout: .seconds(5), maxFrameSize: Frame.defaultMaxSize)
            await c.close()
            do {
                _ = try await c.send(.ping, requestID: RequestID(1), timeout: .seconds(5))
                Issue.record("a closed connection answered")
            } catch let error as BatonClientError {
                #expect(error == .connectionClosed)
                #expect(error.isRetriable)
            } catch {
                Issue.record("not a BatonClientError, so no retry: \(error)")
            }
        }
    }
}
