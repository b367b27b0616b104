import NIOCore

/// Redis over RESP, with the usual single-instance lock recipe: `SET key token NX PX ttl` to take the
/// lock, and a Lua script that deletes (or extends) the key only if it still holds the caller's token.
/// No waiting in line: a busy lock is retried. No jobs.
public struct RedisDialect: Dialect {
    static let releaseScript = "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end"
    static let renewScript = "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('pexpire',KEYS[1],ARGV[2]) else return 0 end"

    var releaseSHA = ""
    var renewSHA = ""
    var lastToken = UInt64.random(in: 0...(UInt64.max / 2))
    /// The token each slot's SET carried, to report on a grant.
    var sentTokens: [Int: UInt64] = [:]
    public let canWait = false

    public init() {}

    func command(_ args: [String], into b: inout ByteBuffer) {
        b.writeString("*\(args.count)\r\n")
        for a in args {
            b.writeString("$\(a.utf8.count)\r\n")
            b.writeString(a)
            b.writeString("\r\n")
        }
    }

    public mutating func handshake(into buffer: inout ByteBuffer) -> Bool {
        command(["SCRIPT", "LOAD", Self.releaseScript], into: &buffer)
        command(["SCRIPT", "LOAD", Self.renewScript], into: &buffer)
        return true
    }

    public mutating func readHandshake(_ buffer: inout ByteBuffer) throws -> Bool? {
        let saved = buffer
        guard case .bulk(let a?)? = try Self.readValue(&buffer), case .bulk(let b?)? = try Self.readValue(&buffer) else {
            buffer = saved
            return nil
        }
        releaseSHA = a
        renewSHA = b
        return true
    }

    public mutating func write(_ step: Step, slot: Int, into buffer: inout ByteBuffer) {
        switch step {
        case .acquire(let key, _):
            lastToken += 1
            sentTokens[slot] = lastToken
            command(["SET", key, String(lastToken), "NX", "PX", "30000"], into: &buffer)
        case .release(let key, let token):
            command(["EVALSHA", releaseSHA, "1", key, String(token)], into: &buffer)
        case .renew(let key, let token):
            command(["EVALSHA", renewSHA, "1", key, String(token), "30000"], into: &buffer)
        case .add, .claim, .complete:
            preconditionFailure("the redis target runs lock workloads only")
        }
    }

    enum Value: Equatable {
        case simple(String)
        case error(String)
        case integer(Int64)
        case bulk(String?)
    }

    /// Reads one RESP value, or nil (consuming nothing) until it is all here.
    static func readValue(_ buffer: inout ByteBuffer) throws -> Value? {
        var b = buffer
        guard let line = b.readCRLFLine(), let kind = line.first else { return nil }
        let rest = String(line.dropFirst())
        let value: Value
        switch kind {
        case "+": value = .simple(rest)
        case "-": value = .error(rest)
        case ":":
            guard let n = Int64(rest) else { throw DialectError("bad integer reply \(line)") }
            value = .integer(n)
        case "$":
            guard let n = Int(rest) else { throw DialectError("bad bulk reply \(line)") }
            if n < 0 {
                value = .bulk(nil)
            } else {
                guard b.readableBytes >= n + 2, let s = b.readString(length: n) else { return nil }
                b.moveReaderIndex(forwardBy: 2)
                value = .bulk(s)
            }
        default:
            throw DialectError("unexpected reply \(line)")
        }
        buffer = b
        return value
    }

    public mutating func read(_ buffer: inout ByteBuffer, pending: inout [Int]) throws -> (slot: Int, outcome: Outcome)? {
        guard let value = try Self.readValue(&buffer) else { return nil }
        let slot = try pending.popOldest()
        switch value {
        case .simple("OK"): return (slot, .granted(token: sentTokens[slot] ?? 0))
        case .bulk(nil): return (slot, .busy)
        case .integer(1): return (slot, .done)
        case .integer: return (slot, .failed("token no longer holds the key"))
        case .error(let e): return (slot, .failed(e))
        default: return (slot, .failed("unexpected \(value)"))
        }
    }
}
