import BatonProtocol
import BatonRaft
import Testing

@testable import BatonNode

/// `ClusterClock` on every member of a model cluster, against a simulated real clock: elections by
/// Raft's rules (a majority whose logs are no newer), appends and heartbeats that are delayed and
/// reordered, commits by majority, and pauses (a paused member does nothing while its monotonic
/// clock runs on, as under SIGSTOP or a long GC). After every step: no two stamps in the committed
/// log are further apart in cluster time than in real time, and no stamp committed after a reading
/// that a leader answered with is further from it than the real time between them.
@Suite struct ClusterClockPropertyTests {
    @Test(arguments: [3, 5])
    func theClusterTimeNeverGainsOnRealTime(members: Int) async {
        var (terms, commits, readings) = (0, 0, 0)
        for seed in 1...400 {
            var model = ClockModel(members: members, seed: UInt64(seed))
            for _ in 0..<600 {
                model.step()
                if let violation = model.violation {
                    Issue.record("seed \(seed), \(members) members: \(violation)\n\(model.trace.suffix(40).joined(separator: "\n"))")
                    return
                }
            }
            terms += Int(model.members.map(\.term.rawValue).max() ?? 0)
            commits += model.committed.count
            readings += model.readings.count
            await Task.yield()  // a long synchronous loop would starve the tests beside it
        }
        // The premise: the runs elect, commit and answer a lot (400 seeds gave 5,583 and 6,631 terms,
        // 14,355 and 11,694 committed entries, 2,586 and 589 readings for 3 and 5 members).
        #expect(terms > 2_000 && commits > 5_000 && readings > 200, "the model did too little: \(terms) terms, \(commits) entries, \(readings) readings")
    }
}

struct ClockModel {
    struct Entry: Equatable {
        var term: Term
        /// Nil for a new leader's empty entry.
        var stamp: Timestamp?
        /// The real time it was stamped at.
        var real: UInt64
    }

    struct Member {
        var clock: ClusterClock
        /// This member's monotonic clock is `real + offset`.
        var offset: UInt64
        var term = Term(0)
        /// Believes it leads `term` (it may have been deposed without knowing).
        var leading = false
        /// It committed an entry of the term it leads: from then on it answers clients.
        var answering = false
        var log: [Entry] = []
        var paused = false
    }

    /// An append (carrying the sender's log then) or a heartbeat (carrying its time then).
    struct Message {
        var from: Int
        var to: Int
        var term: Term
        var log: [Entry]?
        var time: Timestamp
    }

    var real: UInt64 = 1_000_000
    var members: [Member]
    var inFlight: [Message] = []
    var committed: [Entry] = []
    /// Readings leaders answered clients with, and when (real time).
    var readings: [(real: UInt64, time: Timestamp)] = []
    var violation: String?
    var trace: [String] = []
    private var rng: UInt64

    init(members count: Int, seed: UInt64) {
        rng = seed &* 0x9E37_79B9_7F4A_7C15
        members = []
        for _ in 0..<count {
            members.append(Member(clock: ClusterClock(stateTime: .zero, at: 0), offset: 0))
        }
        for i in members.indices {
            members[i].offset = random(1_000_000)
            members[i].clock = ClusterClock(stateTime: .zero, at: mono(i))
        }
    }

    private mutating func random(_ n: UInt64) -> UInt64 {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) % n
    }

    func mono(_ i: Int) -> UInt64 { real + members[i].offset }
    var majority: Int { members.count / 2 + 1 }

    mutating func step() {
        var i = Int(random(UInt64(members.count)))
        let action = random(100)
        if action >= 30 {
            // A leader's action: mostly one that can act.
            let leaders = members.indices.filter { members[$0].leading && !members[$0].paused }
            if !leaders.isEmpty, random(4) != 0 { i = leaders[Int(random(UInt64(leaders.count)))] }
        }
        switch action {
        case 0..<15: real += 1 + random(300)
        case 15..<20:
            members[i].paused.toggle()
            trace.append("\(real) \(members[i].paused ? "pause" : "resume") \(i)")
        case 20..<30: elect(i)
        case 30..<45: propose(i)
        case 45..<60:
            let append = random(2) == 0
            for j in members.indices where random(4) != 0 { send(from: i, to: j, append: append) }
        case 60..<82: for _ in 0..<(1 + random(4)) { deliver() }
        case 82..<92: commit(i)
        default: answer(i)
        }
    }

    private mutating func stepDown(_ i: Int, to term: Term) {
        if members[i].leading {
            members[i].clock.follow(at: mono(i))
            trace.append("\(real) \(i) steps down from term \(members[i].term)")
        }
        members[i].leading = false
        members[i].answering = false
        members[i].term = max(members[i].term, term)
    }

    private func isUpToDate(_ candidate: [Entry], comparedTo other: [Entry]) -> Bool {
        let (ct, ot) = (candidate.last?.term ?? Term(0), other.last?.term ?? Term(0))
        return ct > ot || (ct == ot && candidate.count >= other.count)
    }

    private mutating func elect(_ i: Int) {
        guard !members[i].paused else { return }
        let term = Term(members[i].term.rawValue + 1)
        let voters = members.indices.filter { j in
            !members[j].paused && members[j].term < term && isUpToDate(members[i].log, comparedTo: members[j].log)
        }
        guard voters.contains(i), voters.count >= majority else { return }
        for j in voters { stepDown(j, to: term) }
        let lastTerm = members[i].log.last?.term ?? Term(0)
        let newest = members[i].log.last(where: { $0.stamp != nil })?.stamp ?? .zero
        members[i].clock.lead(term: term, logNewest: newest, logLastTerm: lastTerm, origin: Timestamp(milliseconds: real), at: mono(i))
        members[i].leading = true
        members[i].log.append(Entry(term: term, stamp: nil, real: real))
        trace.append("\(real) \(i) leads term \(term) at \(members[i].clock.now(at: mono(i)).milliseconds) (voters \(voters))")
    }

    private mutating func propose(_ i: Int) {
        guard members[i].leading, !members[i].paused else { return }
        let stamp = members[i].clock.stamp(at: mono(i))
        members[i].log.append(Entry(term: members[i].term, stamp: stamp, real: real))
        trace.append("\(real) \(i) stamps \(stamp.milliseconds) in term \(members[i].term)")
    }

    private mutating func send(from i: Int, to j: Int, append: Bool) {
        guard i != j, members[i].leading, !members[i].paused else { return }
        inFlight.append(Message(
            from: i, to: j, term: members[i].term, log: append ? members[i].log : nil, time: members[i].clock.now(at: mono(i))))
    }

    private mutating func deliver() {
        guard !inFlight.isEmpty else { return }
        let m = inFlight.remove(at: Int(random(UInt64(inFlight.count))))
        guard !members[m.to].paused else {
            inFlight.append(m)  // it waits in the socket's buffer
            return
        }
        guard m.term >= members[m.to].term else {
            // Refused: the sender learns the newer term when it hears the answer.
            if !members[m.from].paused, members[m.from].term == m.term { stepDown(m.from, to: members[m.to].term) }
            return
        }
        if members[m.to].term < m.term || members[m.to].leading { stepDown(m.to, to: m.term) }
        if let log = m.log, !(log.count <= members[m.to].log.count && Array(members[m.to].log.prefix(log.count)) == log) {
            members[m.to].log = log
        }
        members[m.to].clock.heard(m.time, term: m.term, at: mono(m.to))
    }

    private mutating func commit(_ i: Int) {
        guard members[i].leading, !members[i].paused else { return }
        let log = members[i].log
        guard
            let index = log.indices.reversed().first(where: { n in
                log[n].term == members[i].term
                    && members.filter { $0.log.count > n && Array($0.log.prefix(n + 1)) == Array(log.prefix(n + 1)) }.count >= majority
            })
        else { return }
        let prefix = Array(log.prefix(index + 1))
        guard prefix.count > committed.count else { return }
        guard Array(prefix.prefix(committed.count)) == committed else {
            violation = "the model broke Raft: a committed entry changed"
            return
        }
        let new = prefix[committed.count...]
        committed = prefix
        members[i].answering = true
        for j in members.indices where members[j].log.count >= prefix.count && Array(members[j].log.prefix(prefix.count)) == prefix {
            for e in new { if let s = e.stamp { members[j].clock.applied(s, at: mono(j)) } }
        }
        trace.append("\(real) \(i) commits through \(index)")
        check()
    }

    private mutating func answer(_ i: Int) {
        guard members[i].leading, members[i].answering, !members[i].paused else { return }
        readings.append((real, members[i].clock.now(at: mono(i))))
    }

    private mutating func check() {
        let stamped = committed.filter { $0.stamp != nil }
        for (a, b) in zip(stamped, stamped.dropFirst()) {
            let gained = Int64(b.stamp!.milliseconds) - Int64(a.stamp!.milliseconds) - (Int64(b.real) - Int64(a.real))
            if gained > 0 {
                violation = "committed stamps \(a.stamp!.milliseconds) (real \(a.real)) then \(b.stamp!.milliseconds) (real \(b.real)): \(gained) ms ahead of real time"
                return
            }
        }
        for r in readings {
            for e in stamped where e.real >= r.real {
                let gained = Int64(e.stamp!.milliseconds) - Int64(r.time.milliseconds) - (Int64(e.real) - Int64(r.real))
                if gained > 0 {
                    violation = "a reading \(r.time.milliseconds) answered at real \(r.real), then a committed stamp \(e.stamp!.milliseconds) at real \(e.real): \(gained) ms ahead"
                    return
                }
            }
        }
    }
}
