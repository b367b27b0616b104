import BatonCore
import BatonProtocol
import BatonRaft
import Foundation
import NIOCore

@testable import BatonNode

/// The network: peer messages and client packets, delivered late, out of order, or not at all.
extension NodeSimulation {
    // MARK: - Network

    mutating func send(_ envelope: RaftEnvelope) {
        let from = Int(envelope.from.rawValue) - 1
        let to = Int(envelope.to.rawValue) - 1
        if cut.contains([from, to]) || Int(rng.next() % 1000) < dropPerMille { return }
        let copies = Int(rng.next() % 1000) < duplicatePerMille ? 2 : 1
        for _ in 0..<copies {
            order += 1
            network.append(InFlight(due: now + 1 + Int(rng.next() % UInt64(maxDelay)), order: order, packet: .peer(envelope)))
        }
    }

    /// Delivers what is due. A paused host's packets wait for it (its sockets keep them); a crashed
    /// host's are lost.
    mutating func deliver() {
        guard !network.isEmpty else { return }
        var due: [InFlight] = []
        var later: [InFlight] = []
        for m in network {
            if m.due <= now, !isPausedTarget(m.packet) { due.append(m) } else { later.append(m) }
        }
        guard !due.isEmpty else { return }
        network = later
        due.sort { ($0.due, $0.order) < ($1.due, $1.order) }
        for m in due {
            switch m.packet {
            case .peer(let envelope):
                let to = Int(envelope.to.rawValue) - 1
                guard hosts[to].up else { continue }
                trace(.delivered, envelope.from.rawValue &* 31 &+ envelope.to.rawValue &* 7 &+ envelope.term.rawValue)
                step(to, .message(envelope))
            case .request(let c, let to, let event):
                guard hosts[to].up else { continue }
                if hosts[to].connected.insert(clients[c].id).inserted { step(to, .clientConnected(clients[c].id)) }
                step(to, event)
            case .answer(let c, let attempt, let reply):
                received(reply, by: c, attempt: attempt)
            case .pipelined(let to, let event):
                guard hosts[to].up else { continue }
                if hosts[to].connected.insert(pipelined.id).inserted { step(to, .clientConnected(pipelined.id)) }
                step(to, event)
            case .pipelinedAnswer(let route, let reply):
                receivedPipelined(reply, route)
            }
        }
    }

    func isPausedTarget(_ packet: Packet) -> Bool {
        switch packet {
        case .peer(let envelope):
            let to = Int(envelope.to.rawValue) - 1
            return hosts[to].up && hosts[to].pausedUntil > now
        case .request(_, let to, _), .pipelined(let to, _):
            return hosts[to].up && hosts[to].pausedUntil > now
        case .answer, .pipelinedAnswer:
            return false
        }
    }
}
