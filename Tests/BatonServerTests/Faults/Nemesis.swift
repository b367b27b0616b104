import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Injects faults into a `HostCluster` on a seeded schedule, one at a time: each is injected, held,
/// healed, and followed by the time until a write is accepted again (availability).
struct Nemesis {
    enum Fault: String, CaseIterable {
        case pauseLeaderBriefly = "pause the leader (~an election timeout)"
        case pauseMemberPastLeases = "pause a member past the leases"
        case killAndRestart = "kill -9 a member, restart it"
        case isolateMember = "isolate a member"
        case isolateLeader = "isolate the leader"
        case oneWayCut = "one-way cut between two members"
        case bridge = "bridge (one member sees both others, they not each other)"
        case pauseLeaderThenKillNewLeader = "pause the leader, resume it, kill the new leader"
        case isolateLeaderThenKillNewLeader = "isolate the leader, heal, kill the new leader"
    }

    private var rng: UInt64
    let cluster: HostCluster
    private(set) var injected: [(fault: Fault, availability: Duration?)] = []

    init(seed: UInt64, cluster: HostCluster) {
        rng = seed &* 0x9E37_79B9_7F4A_7C15
        self.cluster = cluster
    }

    private mutating func random(_ n: Int) -> Int {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(n))
    }

    private mutating func milliseconds(_ range: ClosedRange<Int>) -> Duration {
        .milliseconds(range.lowerBound + random(range.count))
    }

    /// The member that says it leads, once one does (up to 10 s).
    func leader() async -> Int? {
        try? await within(.seconds(10), every: .milliseconds(200)) {
            await cluster.statuses().firstIndex { $0?.role == .leader }
        }
    }

    /// One fault: inject, hold, heal, then wait until a write is accepted.
    mutating func next() async throws {
        let fault = Fault.allCases[random(Fault.allCases.count)]
        let member = random(3)
        let other = (member + 1 + random(2)) % 3
        switch fault {
        case .pauseLeaderBriefly:
            let l = await leader() ?? member
            cluster.signal(l, SIGSTOP)
            try await Task.sleep(for: milliseconds(250...500))
        case .pauseMemberPastLeases:
            cluster.signal(member, SIGSTOP)
            try await Task.sleep(for: milliseconds(3_500...4_500))
        case .killAndRestart:
            cluster.crash(member)
            try await Task.sleep(for: milliseconds(300...1_500))
        case .isolateMember:
            try isolate(member)
            try await Task.sleep(for: milliseconds(1_500...4_000))
        case .isolateLeader:
            try isolate(await leader() ?? member)
            try await Task.sleep(for: milliseconds(1_500...4_000))
        case .oneWayCut:
            try drop(into: member, from: other)
            try await Task.sleep(for: milliseconds(1_500...4_000))
        case .bridge:
            let (b, c) = ((member + 1) % 3, (member + 2) % 3)
            try drop(into: b, from: c)
            try drop(into: c, from: b)
            try await Task.sleep(for: milliseconds(1_500...4_000))
        case .pauseLeaderThenKillNewLeader, .isolateLeaderThenKillNewLeader:
            let old = await leader() ?? member
            if fault == .pauseLeaderThenKillNewLeader { cluster.signal(old, SIGSTOP) } else { try isolate(old) }
            let interim = try await within(.seconds(3), every: .milliseconds(100)) {
                let statuses = await cluster.statuses()
                return statuses.indices.first { $0 != old && statuses[$0]?.role == .leader }
            }
            try await Task.sleep(for: milliseconds(100...600))  // the interim leader grants a little
            if fault == .pauseLeaderThenKillNewLeader { cluster.signal(old, SIGCONT) } else { try heal() }
            try await Task.sleep(for: milliseconds(0...60))
            if let interim { cluster.crash(interim) }
            try await Task.sleep(for: milliseconds(300...1_000))
        }
        let healed = ContinuousClock.now
        try await healAll()
        let available = await firstWrite(within: .seconds(20))
        injected.append((fault, available.map { $0 - healed }))
    }

    /// Every link up, every rule gone, every member running and resumed.
    mutating func healAll() async throws {
        try heal()
        for i in 0..<3 {
            cluster.signal(i, SIGCONT)
            if !cluster.isRunning[i] { try cluster.start(i) }
        }
    }

    private func heal() throws {
        let hosts = cluster.hosts
        for i in 0..<3 {
            try hosts.exec(in: hosts.bridge, ["ip", "link", "set", "\(hosts.prefix)v\(i)", "up"])
            try hosts.exec(in: hosts.members[i], ["iptables", "-F", "INPUT"])
        }
    }

    private func isolate(_ i: Int) throws {
        let hosts = cluster.hosts
        try hosts.exec(in: hosts.bridge, ["ip", "link", "set", "\(hosts.prefix)v\(i)", "down"])
    }

    private func drop(into i: Int, from j: Int) throws {
        let hosts = cluster.hosts
        try hosts.exec(in: hosts.members[i], ["iptables", "-A", "INPUT", "-s", hosts.address(ofMember: j), "-j", "DROP"])
    }

    /// The time until a write (an acquire of a key of its own) is answered, or nil.
    private func firstWrite(within limit: Duration) async -> ContinuousClock.Instant? {
        let probe = cluster.client("availability", retryTimeout: .milliseconds(500))
        defer { Task { await probe.shutdown() } }
        var n = 0
        return try? await within(limit, every: .milliseconds(20)) { () async -> ContinuousClock.Instant? in
            n += 1
            guard case .granted = try? await probe.acquireLock("availability-\(n)", ttl: .milliseconds(500)) else { return nil }
            return .now
        }
    }

    /// Faults by kind, operations by outcome, availability after heal (median and maximum).
    func report(history: History) -> String {
        var lines = ["faults: \(injected.count)"]
        for fault in Fault.allCases {
            let times = injected.filter { $0.fault == fault }.map(\.availability)
            guard !times.isEmpty else { continue }
            let known = times.compactMap { $0 }.sorted()
            func ms(_ d: Duration) -> String { "\(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000) ms" }
            let median = known.isEmpty ? "-" : ms(known[known.count / 2])
            let max = known.last.map(ms) ?? "-"
            let never = times.count - known.count
            lines.append("  \(fault.rawValue): \(times.count); writes again after median \(median), max \(max)\(never > 0 ? ", \(never) never" : "")")
        }
        lines.append("operations: \(history.operations.count)")
        var byKind: [String: [String: Int]] = [:]
        for op in history.operations {
            let kind: String =
                switch op.call {
                case .acquire: "acquire"
                case .renew: "renew"
                case .release: "release"
                case .addJob: "add job"
                case .claim: "claim"
                case .extend: "extend"
                case .complete: "complete"
                case .fail: "fail"
                case .read: "read"
                case .write(_, _, let paused): paused ? "write after a pause" : "write"
                }
            let outcome: String =
                switch op.outcome {
                case .lease: "lease"
                case .none: "busy/none"
                case .added: "added"
                case .read(let token): token == nil ? "free" : "held"
                case .done: "ok"
                case .refused: "refused"
                case .unknown: "unknown"
                }
            byKind[kind, default: [:]][outcome, default: 0] += 1
        }
        for (kind, outcomes) in byKind.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(kind): " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
