import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// Running: the loop of simulated milliseconds, and carrying out a node's actions on its host.
extension NodeSimulation {
    // MARK: - Running

    mutating func run() {
        for i in hosts.indices { step(i, .endOfTurn) }
        while now < options.milliseconds && failures.isEmpty {
            tick()
            now += 1
        }
        // Settle: no new commands; give every host up to two more seconds to catch up.
        clientsStopped = true
        let limit = now + 2_000
        while now < limit && failures.isEmpty && !caughtUp {
            tick()
            now += 1
        }
        if failures.isEmpty { checkFinalState() }
    }


    /// One leader, and every host has applied everything it committed.
    var caughtUp: Bool {
        guard let leader = hosts.first(where: { $0.up && $0.node.isLeader }) else { return false }
        return hosts.allSatisfy { $0.up && $0.node.appliedIndex == leader.node.raft.commit }
    }

    /// One real millisecond.
    mutating func tick() {
        if let at = options.outageAt, now == at {
            for i in hosts.indices where hosts[i].up { crash(i, downFor: options.outageLength) }
        }
        if now < options.healAfter {
            injectFaults()
        } else if now == options.healAfter {
            cut.removeAll()
            dropPerMille = 0
            for i in hosts.indices {
                hosts[i].pausedUntil = min(hosts[i].pausedUntil, now)
                if !hosts[i].up { hosts[i].restartAt = now }
            }
        }
        for i in hosts.indices where !hosts[i].up && hosts[i].restartAt <= now { restart(i) }
        deliver()
        for i in hosts.indices where runs(i) {
            while let first = hosts[i].unsynced.first, first.due <= now {
                hosts[i].unsynced.removeFirst()
                write(first, on: i)
                step(i, .persisted(first.id))
            }
            if let saving = hosts[i].snapshotting, saving.due <= now {
                hosts[i].snapshotting = nil
                // Written atomically before the entries it covers are dropped.
                hosts[i].disk.snapshot = saving.snapshot
                hosts[i].disk.entries.removeAll { $0.index <= saving.snapshot.index }
                step(i, .snapshotSaved(saving.snapshot))
            }
            if let at = hosts[i].timerAt, at <= mono(i) {
                hosts[i].timerAt = nil
                step(i, .timer)
            }
            if hosts[i].nextTick <= now {
                hosts[i].nextTick = now + 10
                step(i, .tick(wall: wall(i)))
            }
        }
        driveClients()
        if options.pipelinedDepth > 0 { drivePipelined() }
        putSchedule()
        for i in hosts.indices where runs(i) && hosts[i].stepped {
            hosts[i].stepped = false
            step(i, .endOfTurn)
        }
        checkInvariants()
    }

    // MARK: - Carrying out actions

    mutating func step(_ i: Int, _ event: NodeEvent) {
        if case .endOfTurn = event {} else { hosts[i].stepped = true }
        let actions = hosts[i].node.step(event, at: mono(i))
        for action in actions { perform(action, on: i) }
    }

    mutating func perform(_ action: NodeAction, on i: Int) {
        switch action {
        case .send(let messages):
            for message in messages { send(message) }
        case .persist(let id, let snapshot, let entries, let hardState, let sync):
            for entry in entries where entry.term == hosts[i].node.raft.term && hosts[i].node.raft.isLeader {
                if proposedAt[entry.index]?[entry.term] == nil { proposedAt[entry.index, default: [:]][entry.term] = now }
            }
            // A Ready that needs no sync is only written: done once the ones before it are.
            let due = sync ? now + Int(rng.next() % 3) : now
            hosts[i].unsynced.append(Persist(due: due, id: id, snapshot: snapshot, entries: entries, hardState: hardState, sync: sync))
        case .answer(let route, let reply):
            if let to = pipelined.routes.removeValue(forKey: route) {
                order += 1
                network.append(InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .pipelinedAnswer(to, reply)))
                return
            }
            guard let to = routes.removeValue(forKey: route) else { return }
            if debugTrace { print("\(now) host \(i + 1) answers client \(to.client) attempt \(to.attempt): \(reply)") }
            observe(reply, for: to.client, attempt: to.attempt)
            // Now and then an answer is slow to reach its client (a busy client host, a retransmission).
            let slow = rng.next() % 100 < 3 ? 50 + Int(rng.next() % 250) : 0
            let delay = 1 + Int(rng.next() % UInt64(maxDelay)) + slow
            order += 1
            network.append(InFlight(due: now + delay, order: order, packet: .answer(client: to.client, attempt: to.attempt, reply)))
        case .setTimer(let at):
            hosts[i].timerAt = at
        case .saveSnapshot(let machine, let index, let term):
            var buffer = machine.snapshot()
            let snapshot = Snapshot(index: index, term: term, data: buffer.readBytes(length: buffer.readableBytes) ?? [])
            hosts[i].snapshotting = (now + 1 + Int(rng.next() % 5), snapshot)
            trace(.snapshotTaken, index.rawValue)
        case .leading(let term, _, _):
            tookOffice[term] = now
        case .following, .installedSnapshot, .withdrewAbsentClients, .schedulesSettled:
            break
        case .halt(let reason):
            fail("host \(i + 1) halted: \(reason)")
        }
    }

    /// Makes one persist durable on host `i`'s disk.
    mutating func write(_ persist: Persist, on i: Int) {
        if persist.sync {
            if let written = hosts[i].disk.written { hosts[i].disk.hardState = written }  // synced along
            hosts[i].disk.written = nil
            if let hs = persist.hardState { hosts[i].disk.hardState = hs }
        } else if let hs = persist.hardState {
            hosts[i].disk.written = hs
        }
        if let snapshot = persist.snapshot {
            hosts[i].disk.snapshot = snapshot
            hosts[i].disk.entries.removeAll()
        }
        for entry in persist.entries {
            if let at = hosts[i].disk.entries.firstIndex(where: { $0.index >= entry.index }) {
                hosts[i].disk.entries.removeSubrange(at...)
            }
            hosts[i].disk.entries.append(entry)
        }
    }
}
