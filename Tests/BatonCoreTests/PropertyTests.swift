import BatonProtocol
import BatonRaft
import BatonTestSupport
import Testing

@testable import BatonCore

/// Random command sequences against the state machine, watched from outside through its answers.
///
/// Checked after every input:
/// - at most one holder per lock: a grant comes only after the previous grant was released or expired;
/// - fencing tokens (lock grants and job claims) strictly increase;
/// - no job is completed twice;
/// - a machine restored from a snapshot answers every later input exactly like the original;
/// - the quotas' running counts match a recount, stay within their limits, and a command is refused
///   for a quota only when it is full (on even seeds the limits are small, so they are hit often).
/// At the end, every added job is completed, dead or deleted once workers drain the queue.
struct Simulation {
    var rng: SplitMix64
    var machines: [StateMachine]
    var time = Timestamp(milliseconds: 1_000_000)
    var sequences: [UInt64] = [0, 0, 0, 0, 0]
    let keys = ["a", "b", "c"]
    let types = ["x", "y"]

    // The observer's model, built only from answers.
    struct Grant { var token: FencingToken; var expiresAt: Timestamp; var released: Bool }
    var holders: [String: Grant] = [:]
    var waitingAcquires: [WaitKey: (key: String, ttl: Milliseconds)] = [:]
    var claims: [JobID: FencingToken] = [:]
    var maxToken = FencingToken(0)
    /// In order of addition (a Set's order differs between instances, and replays must be exact).
    var added: [JobID] = []
    var completed: Set<JobID> = []
    var deleted: Set<JobID> = []
    var failures: [String] = []
    /// QUOTA_EXCEEDED answers seen: adds, acquires.
    var refusals = (adds: 0, acquires: 0, clients: 0)

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
        var config = StateMachine.Configuration()
        config.sessionWindow = 8
        config.maxCompletedJobs = 4
        config.completedRetention = 3000
        if seed % 2 == 0 {
            config.maxJobs = 8
            config.maxJobBytes = 12
            config.maxLocks = 2
            config.maxClients = 3  // of four: the last to come waits for a session to end
        }
        machines = [StateMachine(configuration: config)]
    }

    mutating func check(_ condition: Bool, _ message: String) {
        if !condition { failures.append("t=\(time.milliseconds): \(message)") }
    }

    /// Applies `input` to every machine; all must answer alike.
    /// Applies `input` to every machine; all must answer alike. The input's own answer is observed by
    /// `observeOwn` before the completions it caused (a release is seen before the grant it triggers).
    @discardableResult
    mutating func apply(_ input: StateMachineInput, observeOwn: (inout Simulation, Reply) -> Void = { _, _ in }) -> Reply? {
        var results = machines.indices.map { machines[$0].apply(input, at: time) }
        let first = results.removeFirst()
        for other in results { check(other == first, "a restored machine answered \(input) differently") }
        for machine in machines { checkQuotas(machine) }
        if let reply = first.reply { observeOwn(&self, reply) }
        for c in first.completions { observe(c.reply, client: c.clientID, sequence: c.sequence, command: nil) }
        return first.reply
    }

    /// What each quota counts, counted from scratch.
    static func recount(_ machine: StateMachine) -> [Int] {
        [
            machine.jobs.values.filter { $0.state != .completed }.count,
            machine.jobs.values.reduce(0) { $0 + $1.spec.payload.count + $1.result.count },
            machine.locks.count,
            machine.sessions.count,
            machine.schedules.count,
        ]
    }

    mutating func checkQuotas(_ machine: StateMachine) {
        let quotas = machine.quotas
        check(quotas.map(\.used) == Self.recount(machine), "quota counts \(quotas.map(\.used)), recounted \(Self.recount(machine))")
        for q in quotas { check(q.used <= q.limit, "\(q.name) at \(q.used) of \(q.limit)") }
    }

    /// A QUOTA_EXCEEDED answer is right only when the quota it names has no room (a refusal changes nothing).
    mutating func checkRefusal(_ command: Command?, client: ClientID) {
        let m = machines[0]
        let used = Self.recount(m)
        if m.sessions[client] == nil {
            check(used[3] >= m.configuration.maxClients, "client \(client) refused a session with room: \(used)")
            refusals.clients += 1
            return
        }
        switch command {
        case .addJob(let spec)?:
            let unfinishedBytes = m.jobs.values.filter { $0.state != .completed }.reduce(0) { $0 + $1.spec.payload.count }
            check(used[0] >= m.configuration.maxJobs || unfinishedBytes + spec.payload.count > m.configuration.maxJobBytes,
                  "add refused with room: \(used)")
            refusals.adds += 1
        case .acquireLock(let key, _, _, _)?:
            check(m.locks[key] == nil && used[2] >= m.configuration.maxLocks, "acquire of \(key) refused with room: \(used)")
            refusals.acquires += 1
        default:
            check(false, "QUOTA_EXCEEDED for \(String(describing: command))")
        }
    }

    mutating func send(_ command: Command, client: Int) {
        sequences[client] += 1
        let seq = SequenceNumber(sequences[client])
        let clientID = ClientID(UInt64(client))
        if case .acquireLock(let key, _, let ttl, _) = command {
            waitingAcquires[WaitKey(clientID: clientID, sequence: seq)] = (key, ttl)
        }
        // Now and then the same request is sent twice, as a client retrying after a timeout would.
        let retry = Int.random(in: 0..<10, using: &rng) == 0
        let reply = apply(.command(clientID, seq, command)) { sim, reply in
            sim.observe(reply, client: clientID, sequence: seq, command: command)
        }
        if retry {
            let again = apply(.command(clientID, seq, command))
            check(again == reply || reply == nil, "a retry got \(String(describing: again)), the first try \(String(describing: reply))")
        }
    }

    mutating func noteToken(_ token: FencingToken) {
        let last = maxToken
        check(token > last, "token \(token) after \(last)")
        maxToken = max(maxToken, token)
    }

    mutating func observe(_ reply: Reply, client: ClientID, sequence: SequenceNumber, command: Command?) {
        let wait = waitingAcquires.removeValue(forKey: WaitKey(clientID: client, sequence: sequence))
        switch reply {
        case .lockAcquired(.granted(let token, let expiresAt, _)):
            guard let wait else { check(false, "grant for an unknown acquire"); return }
            noteToken(token)
            let grantedAt = Timestamp(milliseconds: expiresAt.milliseconds - UInt64(wait.ttl.rawValue))
            if let previous = holders[wait.key] {
                check(previous.released || previous.expiresAt <= grantedAt,
                      "lock \(wait.key) granted at \(grantedAt) while token \(previous.token) held it until \(previous.expiresAt)")
            }
            holders[wait.key] = Grant(token: token, expiresAt: expiresAt, released: false)
        case .lockRenewed(let expiresAt, _):
            if case .renewLock(let key, let token, _) = command, holders[key]?.token == token {
                holders[key]!.expiresAt = expiresAt
            }
        case .lockReleased:
            if case .releaseLock(let key, let token) = command {
                check(holders[key]?.token == token, "release accepted for a token that is not the holder's")
                holders[key]?.released = true
            }
        case .jobAdded(let id, true):
            added.append(id)
        case .jobClaimed(let job?), .jobClaimedByID(let job):
            noteToken(job.token)
            check(!completed.contains(job.id), "completed job \(job.id) was claimed again")
            claims[job.id] = job.token
        case .jobCompleted:
            if case .completeJob(let id, _, _) = command {
                check(!completed.contains(id), "job \(id) completed twice")
                completed.insert(id)
            }
        case .jobDeleted:
            if case .deleteJob(let id) = command { deleted.insert(id) }
        case .lockForceReleased(let token):
            if case .forceReleaseLock(let key) = command {
                check(holders[key]?.token == token, "force release ended token \(token), not the holder's")
                holders[key]?.released = true
            }
        case .error(let e) where e.code == .quotaExceeded:
            checkRefusal(command, client: client)
        case .jobsPurged:
            // Purged jobs were completed or dead; whatever of the added ones is gone counts as deleted.
            for id in added where machines[0].jobs[id] == nil { deleted.insert(id) }
        default:
            break
        }
    }

    mutating func randomToken(forJob id: JobID) -> FencingToken {
        Int.random(in: 0..<5, using: &rng) == 0 ? FencingToken(UInt64.random(in: 1...maxToken.rawValue + 1, using: &rng))
            : claims[id] ?? FencingToken(1)
    }

    mutating func step() {
        let client = Int.random(in: 1...4, using: &rng)
        let key = keys.randomElement(using: &rng)!
        let someJob = added.randomElement(using: &rng) ?? JobID(1)
        switch Int.random(in: 0..<16, using: &rng) {
        case 0, 1:
            time = time.adding(Milliseconds(UInt32.random(in: 0...400, using: &rng)))
            apply(.tick)
        case 2, 3:
            let wait: Milliseconds = Bool.random(using: &rng) ? .zero : Milliseconds(UInt32.random(in: 100...2000, using: &rng))
            send(.acquireLock(key: key, owner: "c\(client)", ttl: Milliseconds(UInt32.random(in: 100...1000, using: &rng)), wait: wait), client: client)
        case 4:
            let token = holders[key].map { Bool.random(using: &rng) ? $0.token : FencingToken($0.token.rawValue - 1) } ?? FencingToken(1)
            send(.renewLock(key: key, token: token, ttl: Milliseconds(UInt32.random(in: 100...1000, using: &rng))), client: client)
        case 5:
            let token = holders[key].map { Int.random(in: 0..<4, using: &rng) > 0 ? $0.token : FencingToken($0.token.rawValue + 1) } ?? FencingToken(1)
            send(.releaseLock(key: key, token: token), client: client)
        case 6, 7:
            let unique = Bool.random(using: &rng) ? "" : "u\(Int.random(in: 0..<3, using: &rng))"
            send(.addJob(JobSpec(type: types.randomElement(using: &rng)!, payload: Array(repeating: UInt8(client), count: Int.random(in: 0...3, using: &rng)), priority: Int32.random(in: 0...2, using: &rng),
                                 delay: Bool.random(using: &rng) ? .zero : 300, maxAttempts: UInt16.random(in: 1...3, using: &rng),
                                 timeout: Milliseconds(UInt32.random(in: 100...1000, using: &rng)), backoff: 100, uniqueKey: unique)), client: client)
        case 8, 9:
            let wait: Milliseconds = Bool.random(using: &rng) ? .zero : Milliseconds(UInt32.random(in: 100...1000, using: &rng))
            send(.claimJob(types: Bool.random(using: &rng) ? types : [types.randomElement(using: &rng)!], worker: "w\(client)", wait: wait), client: client)
        case 10:
            send(.completeJob(someJob, token: randomToken(forJob: someJob), result: Array(repeating: 1, count: Int.random(in: 0...4, using: &rng))), client: client)
        case 11:
            send(.failJob(someJob, token: randomToken(forJob: someJob), error: "e"), client: client)
        case 12:
            let token = randomToken(forJob: someJob)
            send(Bool.random(using: &rng) ? .abortJob(someJob, token: token) : .extendJob(someJob, token: token, ttl: 0), client: client)
        case 13:
            send(Bool.random(using: &rng) ? .requeueJob(someJob) : .claimJobByID(someJob, worker: "w\(client)"), client: client)
        case 14:
            switch Int.random(in: 0..<8, using: &rng) {
            case 0, 1: send(.deleteJob(someJob), client: client)
            case 2: send(.forceReleaseLock(key: key), client: client)
            case 3: send(.purgeJobs(state: Bool.random(using: &rng) ? .dead : .completed, olderThan: 500), client: client)
            case 4: apply(.withdraw(ClientID(UInt64(client)), SequenceNumber(UInt64.random(in: 1...max(1, sequences[client]), using: &rng))))
            default: apply(.detach(ClientID(UInt64(client))))
            }
        default:
            if machines.count < 3 {
                do {
                    let restored = try StateMachine(restoring: machines[0].snapshot(), configuration: machines[0].configuration)
                    check(restored.snapshot() == machines[0].snapshot(), "snapshot of a restored machine differs")
                    machines.append(restored)
                } catch {
                    check(false, "restore failed: \(error)")
                }
            }
        }
    }

    /// Workers take every job to its end: complete it, or let it fail until it is dead.
    mutating func drain() {
        for round in 0..<50 {
            time = time.adding(3_600_000)
            apply(.tick)
            while true {
                sequences[1] += 1
                let seq = SequenceNumber(sequences[1])
                let reply = apply(.command(ClientID(1), seq, .claimJob(types: types, worker: "drain", wait: 0))) { sim, reply in
                    sim.observe(reply, client: ClientID(1), sequence: seq, command: nil)
                }
                guard case .jobClaimed(let job?) = reply else { break }
                send(round % 2 == 0 ? .failJob(job.id, token: job.token, error: "drain") : .completeJob(job.id, token: job.token, result: []), client: 1)
            }
        }
        for id in added where !deleted.contains(id) {
            let state = machines[0].jobs[id]?.state
            check(state == nil || state == .completed || state == .dead, "job \(id) is still \(String(describing: state)) after draining")
        }
    }
}

@Suite(.heavy) struct PropertyTests {
    /// 1,000 seeds, run off the cooperative pool (`OffThePool`) so they starve no test beside them.
    @Test func invariantsHoldOverRandomCommands() async {
        let problems = await OffThePool.run {
            (UInt64(1)...1000).compactMap { seed -> String? in
                var sim = Simulation(seed: seed)
                for _ in 0..<250 { sim.step() }
                sim.drain()
                if !sim.failures.isEmpty { return "seed \(seed): \(sim.failures.prefix(5))" }
                if sim.added.isEmpty { return "seed \(seed) added no job" }
                return nil
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(3))")
    }

    /// The simulation's small quotas are really hit, for jobs and for locks.
    @Test func quotasAreHit() {
        var adds = 0, acquires = 0, clients = 0
        for seed in stride(from: 2, through: 40, by: 2) as StrideThrough<UInt64> {
            var sim = Simulation(seed: seed)
            for _ in 0..<250 { sim.step() }
            adds += sim.refusals.adds
            acquires += sim.refusals.acquires
            clients += sim.refusals.clients
        }
        #expect(adds > 0 && acquires > 0 && clients > 0, "\(adds) adds, \(acquires) acquires and \(clients) new clients refused")
    }

    @Test func sameSeedSameState() {
        var a = Simulation(seed: 42)
        var b = Simulation(seed: 42)
        for _ in 0..<300 { a.step(); b.step() }
        #expect(a.machines[0].snapshot() == b.machines[0].snapshot())
    }
}
