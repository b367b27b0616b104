import NIOCore

/// Runs a body on an event loop every `interval`, measured from the end of one run to the next, until
/// cancelled, with no allocation per run. NIO's `RepeatedTask` makes a promise, a future and their
/// callbacks for every run (about ten allocations, counted by `AllocationTests`' counter): at the
/// node's 10 ms tick that was nearly all an idle node allocated, and a share of every request's.
/// A scheduled callback keeps this one handler and needs nothing new each time.
final class LoopTicker: NIOScheduledCallbackHandler, Sendable {
    private let interval: TimeAmount
    private let body: NIOLoopBound<() -> Void>
    private let cancelled: NIOLoopBoundBox<Bool>

    /// Starts ticking: the first run is `interval` from now.
    init(every interval: TimeAmount, on eventLoop: any EventLoop, _ body: @escaping () -> Void) {
        self.interval = interval
        self.body = NIOLoopBound(body, eventLoop: eventLoop)
        self.cancelled = NIOLoopBoundBox(false, eventLoop: eventLoop)
        _ = try? eventLoop.scheduleCallback(in: interval, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        guard !cancelled.value else { return }
        body.value()
        guard !cancelled.value else { return }
        // Fails only when the loop is shutting down, and then there is nothing left to tick for.
        _ = try? eventLoop.scheduleCallback(in: interval, handler: self)
    }

    /// No run starts after this (call it on the loop).
    func cancel() {
        cancelled.value = true
    }
}
