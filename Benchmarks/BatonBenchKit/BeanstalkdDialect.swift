import NIOCore

/// beanstalkd's text protocol: a job is `put`, then `reserve-with-timeout 0`, then `delete`. No locks.
public struct BeanstalkdDialect: Dialect {
    public let canWait = false
    public init() {}

    public mutating func handshake(into buffer: inout ByteBuffer) -> Bool { false }
    public mutating func readHandshake(_ buffer: inout ByteBuffer) throws -> Bool? { true }

    public mutating func write(_ step: Step, slot: Int, into buffer: inout ByteBuffer) {
        switch step {
        case .add:
            buffer.writeString("put 0 0 60 \(benchPayload.count)\r\n")
            buffer.writeBytes(benchPayload)
            buffer.writeString("\r\n")
        case .claim:
            buffer.writeString("reserve-with-timeout 0\r\n")
        case .complete(let id, _):
            buffer.writeString("delete \(id)\r\n")
        case .acquire, .release, .renew:
            preconditionFailure("the beanstalkd target runs the job workload only")
        }
    }

    public mutating func read(_ buffer: inout ByteBuffer, pending: inout [Int]) throws -> (slot: Int, outcome: Outcome)? {
        var b = buffer
        guard let line = b.readCRLFLine() else { return nil }
        let words = line.split(separator: " ")
        let outcome: Outcome
        switch words.first {
        case "INSERTED", "DELETED":
            outcome = .done
        case "RESERVED":
            guard words.count == 3, let id = UInt64(words[1]), let size = Int(words[2]) else {
                throw DialectError("bad reply \(line)")
            }
            guard b.readableBytes >= size + 2 else { return nil }
            b.moveReaderIndex(forwardBy: size + 2)
            outcome = .job(id: id, token: 0)
        case "TIMED_OUT", "DEADLINE_SOON":
            outcome = .empty
        default:
            outcome = .failed(line)
        }
        buffer = b
        return (try pending.popOldest(), outcome)
    }
}
