import BatonProtocol
import NIOCore

/// Baton's own binary protocol; each slot's request id is its index + 1, so replies may come in any order.
public struct BatonDialect: Dialect {
    let clientID = ClientID(UInt64.random(in: 1...UInt64.max))
    var sequence: UInt64 = 0
    let ttl: Milliseconds = 30_000
    public let canWait = true
    /// Sent with AUTH after HELLO, for a cluster with authentication on.
    let token: String?
    private var greetingsLeft = 0

    public init(token: String? = nil) {
        self.token = token
    }

    public mutating func handshake(into buffer: inout ByteBuffer) -> Bool {
        buffer.writeRequest(.hello(Hello(clientID: clientID, clientName: "baton-bench")), requestID: RequestID(UInt32.max))
        greetingsLeft = 1
        if let token {
            buffer.writeRequest(.auth(token: token), requestID: RequestID(UInt32.max - 1))
            greetingsLeft = 2
        }
        return true
    }

    public mutating func readHandshake(_ buffer: inout ByteBuffer) throws -> Bool? {
        var decoder = FrameDecoder()
        while greetingsLeft > 0 {
            guard let frame = try decoder.decode(buffer: &buffer) else { return nil }
            switch try Reply.decode(opcode: frame.opcode, body: frame.body) {
            case .hello, .authenticated: greetingsLeft -= 1
            case let other: throw DialectError("\(greetingsLeft == 2 || token == nil ? "HELLO" : "AUTH") refused: \(other)")
            }
        }
        return true
    }

    public mutating func write(_ step: Step, slot: Int, into buffer: inout ByteBuffer) {
        sequence += 1
        let seq = SequenceNumber(sequence)
        let command: Command
        switch step {
        case .acquire(let key, let wait):
            command = .acquireLock(key: key, owner: "bench", ttl: ttl, wait: wait ? 60_000 : 0)
        case .release(let key, let token):
            command = .releaseLock(key: key, token: FencingToken(token))
        case .renew(let key, let token):
            command = .renewLock(key: key, token: FencingToken(token), ttl: ttl)
        case .add:
            command = .addJob(JobSpec(type: "bench", payload: benchPayload))
        case .claim:
            command = .claimJob(types: ["bench"], worker: "bench", wait: 0)
        case .complete(let id, let token):
            command = .completeJob(JobID(id), token: FencingToken(token), result: [])
        }
        buffer.writeRequest(.command(seq, command), requestID: RequestID(UInt32(slot + 1)))
    }

    public mutating func read(_ buffer: inout ByteBuffer, pending: inout [Int]) throws -> (slot: Int, outcome: Outcome)? {
        var decoder = FrameDecoder()
        guard let frame = try decoder.decode(buffer: &buffer) else { return nil }
        let slot = Int(frame.requestID.rawValue) - 1
        if let i = pending.firstIndex(of: slot) { pending.remove(at: i) }
        let outcome: Outcome
        switch try Reply.decode(opcode: frame.opcode, body: frame.body) {
        case .lockAcquired(.granted(let token, _, _)): outcome = .granted(token: token.rawValue)
        case .lockAcquired(.busy): outcome = .busy
        case .lockReleased, .lockRenewed, .jobAdded, .jobCompleted: outcome = .done
        case .jobClaimed(let job?): outcome = .job(id: job.id.rawValue, token: job.token.rawValue)
        case .jobClaimed(nil): outcome = .empty
        case .error(let e) where e.code == .notLeader: outcome = .redirect(leader: e.leaderHint)
        case .error(let e): outcome = .failed("\(e)")
        case let other: outcome = .failed("unexpected \(other.opcode)")
        }
        return (slot, outcome)
    }
}

/// The payload of every benchmark job: 64 bytes, a typical small task description.
let benchPayload = [UInt8](repeating: 0x61, count: 64)
