import BatonClientCore
import BatonProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An async client of a Baton cluster.
///
/// One client keeps one connection, opened on first use and reopened after it drops, and sends any
/// number of requests over it at once. Every command carries this client's id and a fresh sequence
/// number; a command that fails in a way that may be retried (connection lost, timeout, node shutting
/// down) is sent again with the same number, so the node applies it once.
///
/// ```swift
/// let baton = BatonClient(configuration: .init(endpoints: ["127.0.0.1:7700"], name: "image-worker"))
/// try await baton.withLock("reports/daily", ttl: .seconds(10)) { lease in
///     try await buildReport(fencingToken: lease.token)
/// }
/// ```
public final class BatonClient: Sendable {
    public struct Configuration: Sendable {
        /// Nodes to connect to, as `host:port`; tried in order.
        public var endpoints: [String]
        /// This client's name: shown as the default owner of its locks and in the node's logs.
        public var name: String
        /// How long to wait for an answer (a waiting acquire or claim adds its wait).
        public var requestTimeout: Duration = .seconds(5)
        public var connectTimeout: Duration = .seconds(2)
        /// How long to keep retrying a request that failed in a retriable way (a waiting acquire or
        /// claim adds its wait).
        public var retryTimeout: Duration = .seconds(10)
        public var logger: Logger = Logger(label: "baton.client")
        /// How requests travel; with `.http2` the endpoints are the nodes' HTTP/2 ports.
        public var transport: Transport = .tcp
        /// TLS to the nodes (TCP transport). Nil: plain TCP.
        public var tls: TLS?
        /// The bearer token this client proves its user with (AUTH after HELLO on TCP; the
        /// `authorization` header on HTTP/2). Nil: none, for a cluster without authentication.
        public var token: String?
        /// The event loops the connection runs on (nil: SwiftNIO's shared singleton group). A
        /// service that runs its own group passes it here.
        public var eventLoopGroup: (any EventLoopGroup)?

        public init(endpoints: [String] = ["127.0.0.1:7700"], name: String = "baton-client") {
            self.endpoints = endpoints
            self.name = name
        }
    }

    /// How requests travel to the nodes.
    public enum Transport: Sendable, Hashable {
        /// Baton's length-prefixed frames on TCP: the default, and the fastest.
        case tcp
        /// HTTP/2 with prior knowledge (h2c), one stream per request, for deployments where only
        /// HTTP/2 passes (load balancers, service meshes). Same operations, same semantics.
        case http2
    }

    public let configuration: Configuration
    /// This client's id, sent in HELLO; random per client instance.
    public let clientID: ClientID
    private let group: any EventLoopGroup
    private let state: NIOLockedValueBox<State>

    private struct State {
        var connection: Connection?
        var connecting: Task<Connection, any Error>?
        /// Sequence numbers, request ids, the endpoints in the order to try them, the leader hint.
        var session: Session
        var isShutDown = false
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        let clientID = ClientID(UInt64.random(in: 1...UInt64.max))
        self.clientID = clientID
        self.group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let valid = configuration.endpoints.filter { Endpoint($0) != nil }
        self.state = NIOLockedValueBox(State(session: Session(clientID: clientID, endpoints: valid)))
    }

    /// Closes the connection. Calls after this fail with `.shutDown`.
    public func shutdown() async {
        let (connection, connecting) = state.withLockedValue { s in
            s.isShutDown = true
            defer { s.connection = nil; s.connecting = nil }
            return (s.connection, s.connecting)
        }
        connecting?.cancel()
        await connection?.close()
    }

    // MARK: - Sending

    func nextSequence() -> SequenceNumber {
        state.withLockedValue { $0.session.nextSequence() }
    }

    /// The open connection, opening one if needed. Concurrent callers share one attempt.
    private func connection() async throws -> Connection {
        let task: Task<Connection, any Error> = try state.withLockedValue { s in
            if s.isShutDown { throw BatonClientError.shutDown }
            if let c = s.connection, c.isActive { return Task { c } }
            if let t = s.connecting { return t }
            let candidates = s.session.candidates()
            guard !candidates.isEmpty else {
                throw BatonClientError.connectFailed("no valid endpoint in \(configuration.endpoints)")
            }
            let t = Task { try await self.connect(to: candidates) }
            s.connecting = t
            return t
        }
        return try await task.value
    }

    /// Connects to the first of `candidates` (`host:port`, as `Session.candidates` ordered them)
    /// that accepts; a leader hint that does not parse is skipped.
    private func connect(to candidates: [String]) async throws -> Connection {
        var lastError: any Error = BatonClientError.connectFailed("no endpoint")
        defer { state.withLockedValue { $0.connecting = nil } }
        for candidate in candidates {
            guard let endpoint = Endpoint(candidate) else { continue }
            do {
                let c = try await Connection.open(
                    to: endpoint, transport: configuration.transport, tls: configuration.tls, token: configuration.token,
                    hello: Hello(clientID: clientID, clientName: configuration.name),
                    group: group, connectTimeout: .init(configuration.connectTimeout),
                    requestTimeout: .init(configuration.requestTimeout), maxFrameSize: Frame.defaultMaxSize)
                state.withLockedValue { s in
                    s.connection = c
                    s.session.connected(to: candidate)
                }
                return c
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// Sends `request` and returns the node's answer; error answers are thrown as `.server`.
    /// Retriable failures are retried (same request, same sequence number) as `Attempts` says:
    /// until `retryTimeout` after the request may have stopped waiting (`extraTimeout`, an
    /// acquire's or claim's wait), so a wait that loses its connection late in the wait (its node
    /// died) is still sent again, and the new leader answers the wait already in its log instead
    /// of keeping it for nobody.
    func call(_ request: Request, extraTimeout: Duration = .zero) async throws -> Reply {
        try await callCounted(request, extraTimeout: extraTimeout).reply
    }

    /// `call`, and when the attempt that got the answer was sent: a lease the answer grants lasts at
    /// least its `leaseLeft` from then (the node counted it when it sent the answer, later still).
    func callCounted(
        _ request: Request, extraTimeout: Duration = .zero
    ) async throws -> (reply: Reply, sent: ContinuousClock.Instant) {
        let clock = ContinuousClock()
        var attempts = Attempts(now: clock.now, wait: extraTimeout, retryTimeout: configuration.retryTimeout)
        while true {
            let failure: BatonClientError
            let backoff: Backoff?
            var used: Connection?
            do {
                let connection = try await self.connection()
                used = connection
                let id = state.withLockedValue { $0.session.nextRequestID() }
                let sent = clock.now
                let reply = try await connection.send(
                    request, requestID: id, timeout: .init(configuration.requestTimeout + extraTimeout))
                if case .error(let e) = reply { throw BatonClientError.server(e) }
                return (reply, sent)
            } catch let error as BatonClientError {
                // AUTH refusing the token while connecting is retried: a member may not know it yet
                // (it lags behind the leader, or a new cluster is still installing its admin token).
                failure = error
                let why: AttemptFailure =
                    used == nil && error.serverCode == .unauthenticated ? .unauthenticatedWhileConnecting : error.attemptFailure
                backoff = attempts.after(why, at: clock.now)
            }
            try await follow(backoff, after: failure, of: request, on: used)
        }
    }

    /// Carries out `backoff` (where to connect, how long to wait) after an attempt on `used` (nil:
    /// it failed to connect), or throws `failure` when there is none (the request has failed) or
    /// the task is cancelled.
    private func follow(
        _ backoff: Backoff?, after failure: BatonClientError, of request: Request, on used: Connection?
    ) async throws {
        guard let backoff, !Task.isCancelled else { throw failure }
        configuration.logger.debug("retrying", metadata: ["error": "\(failure)", "request": "\(request.opcode)"])
        if backoff.leavesConnection { await leave(used, for: backoff.route) }
        if backoff.delay > .zero { try await Task.sleep(for: backoff.delay) }
    }

    /// An attempt on `used` (nil: it failed to connect) failed so that the next goes by `route`:
    /// `used` is closed (the other requests in flight on it are sent again by their own retries) and
    /// the session follows the route, unless another request's retry left `used` already.
    private func leave(_ used: Connection?, for route: AttemptRoute) async {
        let old = state.withLockedValue { s -> Connection? in
            guard let used else {
                s.session.follow(route)
                return nil
            }
            guard let current = s.connection, current === used else { return nil }
            s.connection = nil
            s.session.follow(route)
            return current
        }
        await old?.close()
    }

    func command(_ command: Command, extraTimeout: Duration = .zero) async throws -> Reply {
        try await call(.command(nextSequence(), command), extraTimeout: extraTimeout)
    }

    func commandCounted(
        _ command: Command, extraTimeout: Duration = .zero
    ) async throws -> (reply: Reply, sent: ContinuousClock.Instant) {
        try await callCounted(.command(nextSequence(), command), extraTimeout: extraTimeout)
    }

    /// The node's clock, from a PING.
    public func serverTime() async throws -> Timestamp {
        guard case .pong(let t) = try await call(.ping) else { throw unexpected("PING") }
        return t
    }
}

func unexpected(_ what: String) -> BatonClientError {
    .unexpectedReply("the answer does not match \(what)")
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
