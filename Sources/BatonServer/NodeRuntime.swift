import BatonCore
import BatonProtocol
import Logging
import NIOCore

/// Owns the state machine of one node and carries out what it decides: answers to connections,
/// a timer for the next deadline. Lives on one event loop; every method runs there.
final class NodeRuntime {
    let configuration: NodeConfiguration
    let eventLoop: any EventLoop
    let clock: NodeClock
    var logger: Logger
    private(set) var machine: StateMachine
    /// Who waits for the answer to a waiting command.
    private var routes: [WaitKey: Route] = [:]
    /// Open connections per client id; a client whose last connection closes is detached.
    private var connectionsPerClient: [ClientID: Int] = [:]
    private var connections: [ObjectIdentifier: ClientConnectionHandler] = [:]
    private var timer: (deadline: Timestamp, task: Scheduled<Void>)?
    private var idleSweep: RepeatedTask?
    private(set) var isShuttingDown = false

    struct WaitKey: Hashable {
        var clientID: ClientID
        var sequence: SequenceNumber
    }

    struct Route {
        var connection: ClientConnectionHandler
        var requestID: RequestID
    }

    init(configuration: NodeConfiguration, eventLoop: any EventLoop, clock: NodeClock, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.clock = clock
        self.logger = logger
        self.machine = StateMachine(configuration: configuration.stateMachine)
    }

    var helloReply: HelloReply {
        HelloReply(
            version: batonProtocolVersion, nodeID: configuration.nodeID, serverTime: clock.now(),
            maxFrameSize: UInt32(configuration.maxFrameSize), maxKeyLength: UInt16(configuration.limits.maxKeyLength),
            minTTL: Milliseconds(configuration.limits.minTTLMilliseconds),
            maxTTL: Milliseconds(configuration.limits.maxTTLMilliseconds),
            idleTimeout: Milliseconds(configuration.idleTimeoutMilliseconds))
    }

    // MARK: Connections

    func register(_ connection: ClientConnectionHandler) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func clientConnected(_ client: ClientID) {
        connectionsPerClient[client, default: 0] += 1
    }

    func connectionClosed(_ connection: ClientConnectionHandler, client: ClientID?) {
        connections[ObjectIdentifier(connection)] = nil
        routes = routes.filter { $0.value.connection !== connection }
        guard let client, let n = connectionsPerClient[client] else { return }
        if n > 1 {
            connectionsPerClient[client] = n - 1
            return
        }
        connectionsPerClient[client] = nil
        if !isShuttingDown { apply(.detach(client)) }
    }

    // MARK: Requests

    /// Applies a command and returns its answer, or nil when the answer will come later through `connection`.
    func execute(
        _ command: Command, sequence: SequenceNumber, client: ClientID, requestID: RequestID,
        from connection: ClientConnectionHandler
    ) -> Reply? {
        if isShuttingDown { return .error(.shuttingDown, "node \(configuration.nodeID) is shutting down") }
        let reply = apply(.command(client, sequence, command))
        if reply == nil {
            routes[WaitKey(clientID: client, sequence: sequence)] = Route(connection: connection, requestID: requestID)
        }
        return reply
    }

    func query(_ query: Query) -> Reply {
        apply(.tick)
        return machine.query(query)
    }

    @discardableResult
    private func apply(_ input: StateMachineInput) -> Reply? {
        let applied = machine.apply(input, at: clock.now())
        for completion in applied.completions {
            let key = WaitKey(clientID: completion.clientID, sequence: completion.sequence)
            guard let route = routes.removeValue(forKey: key) else { continue }
            route.connection.deliver(completion.reply, requestID: route.requestID)
        }
        armTimer()
        return applied.reply
    }

    // MARK: Time

    /// Keeps one timer set for the state machine's next deadline.
    private func armTimer() {
        guard let next = machine.nextDeadline, !isShuttingDown else { return }
        if let timer, timer.deadline <= next { return }
        timer?.task.cancel()
        let delay = clock.now().distance(to: next)
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let task = eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
            this.value.timer = nil
            this.value.apply(.tick)
        }
        timer = (next, task)
    }

    /// Closes idle connections: every quarter of the idle timeout, each connection that sent nothing
    /// for the whole timeout and waits on nothing is closed.
    func startIdleSweep() {
        let idle = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds))
        let every = TimeAmount.milliseconds(Int64(configuration.idleTimeoutMilliseconds / 4))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        idleSweep = eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            let cutoff = NIODeadline.now() - idle
            for connection in this.value.connections.values { connection.closeIfIdle(since: cutoff) }
        }
    }

    /// Stops the timers and tells every connection the node is going away.
    func shutDown() {
        isShuttingDown = true
        timer?.task.cancel()
        timer = nil
        idleSweep?.cancel()
        idleSweep = nil
        for connection in connections.values { connection.shutDown() }
    }

    var connectionCount: Int { connections.count }
}
