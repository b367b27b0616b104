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
    /// Inside `hold()`…`release()`: the task that holds it flushes at its end.
    private var held = 0
    private var scheduled = false
    private var running = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes `connection` after the current event-loop task. The caller queues it once per flush.
    func enqueue(_ connection: any AnswerFlushing) {
        if held == 0, !scheduled {
            scheduled = true
            eventLoop.execute { [this = NIOLoopBound(self, eventLoop: eventLoop)] in this.value.run() }
        }
        queued.append(connection)
    }

    /// Holds the flushes queued from now until the matching `release()`, which does them: for work
    /// that is a task of its own (the node stepping its events), so its answers need no new task.
    func hold() {
        held += 1
    }

    func release() {
        held -= 1
        if held == 0, !queued.isEmpty { run() }
    }

    /// Flushes until nothing is queued; a flush that queues more (a write that closes a connection,
    /// whose requests are then answered) is taken by the same loop, not by a nested one.
    private func run() {
        scheduled = false
        guard !running else { return }
        running = true
        defer { running = false }
        while !queued.isEmpty {
            swap(&queued, &spare)
            for connection in spare { connection.flushAnswers() }
            spare.removeAll(keepingCapacity: true)
        }
    }
}
