import NIOCore
import NIOPosix
import NIOSSL

/// One benchmark connection: keeps `pipeline` cycles in flight, each a closed loop (the next request of
/// a slot goes out when its reply comes), and writes every request produced by one read in one flush.
final class LoadConnection<D: Dialect>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var dialect: D
    private let workload: Workload
    private let keys: Int
    private let connectionIndex: Int
    private let measureFrom: NIODeadline
    private let stopAt: NIODeadline
    private let result: EventLoopPromise<Measurement>

    private var cycles: [Cycle?]
    private var startedAt: [UInt64]
    private var renewTokens: [UInt64?]
    private var pending: [Int] = []
    private var inbound = ByteBuffer()
    private var outbound = ByteBuffer()
    private var greeting = false
    private var stopping = false
    private var measurement = Measurement()
    private var rng: UInt64

    init(
        dialect: D, workload: Workload, keys: Int, pipeline: Int, connectionIndex: Int, measureFrom: NIODeadline,
        stopAt: NIODeadline, result: EventLoopPromise<Measurement>
    ) {
        self.dialect = dialect
        self.workload = workload
        self.keys = max(1, keys)
        self.connectionIndex = connectionIndex
        self.measureFrom = measureFrom
        self.stopAt = stopAt
        self.result = result
        self.cycles = Array(repeating: nil, count: pipeline)
        self.startedAt = Array(repeating: 0, count: pipeline)
        self.renewTokens = Array(repeating: nil, count: pipeline)
        self.rng = UInt64(connectionIndex) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    func channelActive(context: ChannelHandlerContext) {
        let this = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(deadline: stopAt) {
            this.value.handler.stopping = true
            this.value.handler.finishIfIdle(context: this.value.context)
        }
        if dialect.handshake(into: &outbound) {
            greeting = true
            flush(context: context)
        } else {
            startAll(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do {
            if greeting {
                guard try dialect.readHandshake(&inbound) == true else { return }
                greeting = false
                startAll(context: context)
            }
            while let (slot, outcome) = try dialect.read(&inbound, pending: &pending) {
                if case .redirect(let leader) = outcome {
                    // Not the leader: this connection ends here; the run reopens it where it points.
                    measurement.redirects += 1
                    measurement.redirectedTo = leader ?? ""
                    stopping = true
                    context.close(promise: nil)
                    return
                }
                handle(outcome, slot: slot)
            }
            inbound.discardReadBytes()
        } catch {
            measurement.recordError("\(error)")
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
        finishIfIdle(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !stopping { measurement.recordError("connection closed by the server") }
        result.succeed(measurement)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // redis-server answers the close at the end of a run without TLS's close_notify: not an
        // error of the run.
        if stopping, case NIOSSLError.uncleanShutdown = error {
            context.close(promise: nil)
            return
        }
        measurement.recordError("\(error)")
        context.close(promise: nil)
    }

    private func flush(context: ChannelHandlerContext) {
        guard outbound.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(outbound), promise: nil)
        outbound = context.channel.allocator.buffer(capacity: 4096)
    }

    private func finishIfIdle(context: ChannelHandlerContext) {
        if stopping && pending.isEmpty { context.close(promise: nil) }
    }

    private var measuring: Bool { NIODeadline.now() >= measureFrom }

    private func random() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    private func startAll(context: ChannelHandlerContext) {
        for slot in cycles.indices { start(slot) }
        flush(context: context)
    }

    /// Begins a new cycle in `slot`, unless the run is stopping.
    private func start(_ slot: Int) {
        guard !stopping else {
            cycles[slot] = nil
            return
        }
        let cycle: Cycle
        switch workload {
        case .lock:
            let key = "bench/\(random() % UInt64(keys))"
            cycle = Cycle(workload: workload, key: key, step: .acquire(key: key, wait: false))
        case .lockContended:
            cycle = Cycle(workload: workload, key: "bench/hot", step: .acquire(key: "bench/hot", wait: dialect.canWait))
        case .job:
            cycle = Cycle(workload: workload, key: "", step: .add)
        case .renew:
            let key = "bench/renew/\(connectionIndex)/\(slot)"
            if let token = renewTokens[slot] {
                cycle = Cycle(workload: workload, key: key, step: .renew(key: key, token: token))
            } else {
                cycle = Cycle(workload: workload, key: key, step: .acquire(key: key, wait: false))
            }
        }
        cycles[slot] = cycle
        startedAt[slot] = DispatchTimeNanos.now()
        send(cycle.step, slot: slot)
    }

    private func send(_ step: Step, slot: Int) {
        dialect.write(step, slot: slot, into: &outbound)
        pending.append(slot)
    }

    private func handle(_ outcome: Outcome, slot: Int) {
        guard var cycle = cycles[slot] else { return }
        if case .failed(let text) = outcome {
            if measuring { measurement.recordError(text) }
            start(slot)
            return
        }
        let (next, missed) = cycle.next(after: outcome)
        cycles[slot] = cycle
        if let next {
            send(next, slot: slot)
            return
        }
        if missed {
            if measuring { measurement.misses += 1 }
        } else if workload == .renew, case .acquire = cycle.step {
            renewTokens[slot] = cycle.held  // taking the slot's lock is set-up, not a measured cycle
        } else if measuring {
            let micros = (DispatchTimeNanos.now() - startedAt[slot]) / 1000
            measurement.recordCycle(microseconds: micros, requests: cycle.requests)
        }
        start(slot)
    }
}

/// Monotonic nanoseconds.
enum DispatchTimeNanos {
    static func now() -> UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }
}
