import BatonProtocol
import Testing

@testable import BatonCore

/// A state machine with a hand-driven clock, and helpers that unwrap its answers.
struct Harness {
    var machine: StateMachine
    var time = Timestamp(milliseconds: 1_000_000)
    var nextSequence: [ClientID: UInt64] = [:]
    /// Every completion seen, in order.
    var completions: [Completion] = []

    init(_ configuration: StateMachine.Configuration = StateMachine.Configuration()) {
        machine = StateMachine(configuration: configuration)
    }

    mutating func advance(_ ms: UInt64) {
        time = Timestamp(milliseconds: time.milliseconds + ms)
        let applied = machine.apply(.tick, at: time)
        completions += applied.completions
    }

    /// Applies a command with the client's next sequence number; returns the immediate answer (nil: waiting).
    @discardableResult
    mutating func run(_ command: Command, client: ClientID = ClientID(1)) -> Reply? {
        let seq = (nextSequence[client] ?? 0) + 1
        nextSequence[client] = seq
        return send(command, client: client, sequence: SequenceNumber(seq))
    }

    mutating func send(_ command: Command, client: ClientID, sequence: SequenceNumber) -> Reply? {
        let applied = machine.apply(.command(client, sequence, command), at: time)
        completions += applied.completions
        return applied.reply
    }

    func query(_ q: Query) -> Reply { machine.query(q) }

    mutating func acquire(_ key: String, client: ClientID = ClientID(1), ttl: Milliseconds = 1000, wait: Milliseconds = .zero, owner: String = "o") -> Reply? {
        run(.acquireLock(key: key, owner: owner, ttl: ttl, wait: wait), client: client)
    }

    mutating func grantedToken(_ key: String, client: ClientID = ClientID(1), ttl: Milliseconds = 1000) -> FencingToken {
        guard case .lockAcquired(.granted(let token, _, _)) = acquire(key, client: client, ttl: ttl) else {
            Issue.record("lock \(key) was not granted")
            return FencingToken(0)
        }
        return token
    }

    mutating func add(_ spec: JobSpec) -> JobID {
        guard case .jobAdded(let id, _) = run(.addJob(spec)) else {
            Issue.record("add failed")
            return JobID(0)
        }
        return id
    }

    mutating func claim(_ types: [String], client: ClientID = ClientID(1), wait: Milliseconds = .zero) -> ClaimedJob? {
        guard case .jobClaimed(let job) = run(.claimJob(types: types, worker: "w", wait: wait), client: client) else {
            return nil
        }
        return job
    }

    func job(_ id: JobID) -> JobInfo? {
        guard case .job(let info) = query(.getJob(id)) else { return nil }
        return info
    }
}

func errorCode(_ reply: Reply?) -> ErrorCode? {
    if case .error(let e) = reply { return e.code }
    return nil
}
