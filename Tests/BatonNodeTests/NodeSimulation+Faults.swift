import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// Faults: crashes that lose unsynced writes, pauses, partitions, and the restarts.
extension NodeSimulation {
    // MARK: - Faults

    mutating func injectFaults() {
        guard rng.next() % 1000 < 4 else { return }  // about every 250 ms
        let n = hosts.count
        let leader = hosts.indices.first { runs($0) && hosts[$0].node.isLeader }
        switch FaultKind(draw: rng.next(), hosts: n) {
        case .crash:
            let victim = Int(rng.next() % UInt64(n))
            if hosts[victim].up && hosts.filter(\.up).count > 1 { crash(victim, downFor: 20 + Int(rng.next() % 400)) }
        case .pause:
            // A pause, often of the leader: it stops while its clock runs on, then resumes as if
            // nothing happened (it may still think it leads).
            let victim = (rng.next() % 3 != 0 ? leader : nil) ?? Int(rng.next() % UInt64(n))
            if runs(victim) {
                hosts[victim].pausedUntil = now + 50 + Int(rng.next() % 600)
                pauses += 1
                trace(.paused, UInt64(victim))
            }
        case .isolate:
            // Isolate one host (often the leader) both ways.
            let victim = (rng.next() % 2 == 0 ? leader : nil) ?? Int(rng.next() % UInt64(n))
            for other in 0..<n where other != victim {
                cut.insert([victim, other])
                cut.insert([other, victim])
            }
            trace(.isolated, UInt64(victim))
        case .cutOneWay:
            // A one-way partition.
            let a = Int(rng.next() % UInt64(n))
            let b = (a + 1 + Int(rng.next() % UInt64(n - 1))) % n
            cut.insert([a, b])
            trace(.cutOneWay, UInt64(a * 16 + b))
        case .heal:
            cut.removeAll()
            trace(.healed, 0)
        }
    }

    mutating func crash(_ i: Int, downFor: Int) {
        hosts[i].up = false
        hosts[i].unsynced.removeAll()  // not yet synced: gone
        hosts[i].snapshotting = nil
        if let written = hosts[i].disk.written, rng.next() % 2 == 0 { hosts[i].disk.hardState = written }  // or it reached the disk anyway
        hosts[i].disk.written = nil
        hosts[i].restartAt = now + downFor
        crashes += 1
        trace(.crashed, UInt64(i))
    }

    /// Rebuilds the host's node from its disk alone.
    mutating func restart(_ i: Int) {
        hosts[i].node = makeNode(i, disk: hosts[i].disk, at: mono(i))
        hosts[i].up = true
        hosts[i].incarnation += 1
        hosts[i].pausedUntil = 0
        hosts[i].timerAt = nil
        hosts[i].connected = []
        hosts[i].nextTick = now + 1
        trace(.restarted, UInt64(i))
        step(i, .endOfTurn)
    }
}
