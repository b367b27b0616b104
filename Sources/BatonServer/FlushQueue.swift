import NIOCore

/// A connection that queues answers and writes them out when told.
protocol AnswerFlushing: AnyObject {
    /// Writes and flushes every answer queued so far.
    func flushAnswers()
}

/// Connections with answers queued outside a read (after a log write, or when a wait is settled),
/// flushed together in one event-loop task once the work that produced them is done: a group commit
/// answers dozens of connections at once, and they need one scheduled task, not one each.
final class FlushQueue {
    private let eventLoop: any EventLoop
    private var queued: [any AnswerFlushing] = []
    private var spare: [any AnswerFlushing] = []

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes `connection` after the current event-loop task. The caller queues it once per flush.
    func enqueue(_ connection: any AnswerFlushing) {
        if queued.isEmpty {
            eventLoop.execute { [this = NIOLoopBound(self, eventLoop: eventLoop)] in this.value.run() }
        }
        queued.append(connection)
    }

    private func run() {
        swap(&queued, &spare)
        for connection in spare { connection.flushAnswers() }
        spare.removeAll(keepingCapacity: true)
    }
}
