import BatonProtocol
import NIOCore

/// A state machine input with the time it is applied at: the payload of one log entry.
///
/// ```
/// kind:u8  time:u64
/// kind 1, command: client_id:u64  sequence:u64  opcode:u8  body (as in the wire protocol)
/// kind 2, tick:    (nothing)
/// kind 3, detach:  client_id:u64
/// kind 4, withdraw: client_id:u64  sequence:u64
/// kind 5, command of an authenticated client: user:str  token_id:u64, then as kind 1
/// kind 6, bootstrap of authentication: token_hash:32 bytes
/// kind 7, fires of schedules: count:u32 {name:str revision:u64 slot:u64 missed:u32 next:u64}
/// ```
/// Kinds 5 and 6 are written only where authentication is used, and kind 7 only where schedules
/// are, so a cluster without them keeps a log that members of older builds read.
public struct TimedInput: Hashable, Sendable {
    public var input: StateMachineInput
    public var time: Timestamp
    public init(_ input: StateMachineInput, at time: Timestamp) {
        self.input = input
        self.time = time
    }

    public func encode() -> [UInt8] {
        var b = ByteBuffer()
        return encode(using: &b)
    }

    /// `encode()` through a buffer the caller keeps between calls: one allocation, the result's.
    public func encode(using b: inout ByteBuffer) -> [UInt8] {
        b.clear()
        switch input {
        case .command(let client, let seq, let command, let principal):
            b.writeU8(principal == nil ? 1 : 5)
            b.writeU64(time.milliseconds)
            if let principal {
                b.writeStr(principal.user)
                b.writeU64(principal.token.rawValue)
            }
            b.writeU64(client.rawValue)
            b.writeU64(seq.rawValue)
            b.writeU8(command.opcode.rawValue)
            command.encodeBody(into: &b)
        case .tick:
            b.writeU8(2)
            b.writeU64(time.milliseconds)
        case .detach(let client):
            b.writeU8(3)
            b.writeU64(time.milliseconds)
            b.writeU64(client.rawValue)
        case .withdraw(let client, let seq):
            b.writeU8(4)
            b.writeU64(time.milliseconds)
            b.writeU64(client.rawValue)
            b.writeU64(seq.rawValue)
        case .bootstrapAuth(let hash):
            b.writeU8(6)
            b.writeU64(time.milliseconds)
            for byte in hash.bytes { b.writeU8(byte) }
        case .fireSchedules(let fires):
            b.writeU8(7)
            b.writeU64(time.milliseconds)
            b.writeU32(UInt32(fires.count))
            for f in fires {
                b.writeStr(f.name)
                b.writeU64(f.revision)
                b.writeU64(f.slot.milliseconds)
                b.writeU32(f.missed)
                b.writeU64(f.next.milliseconds)
            }
        }
        return Array(b.readableBytesView)
    }

    public static func decode(_ bytes: [UInt8]) throws -> TimedInput {
        var b = ByteBuffer(bytes: bytes)
        do {
            let kind = try b.readU8("kind")
            let time = Timestamp(milliseconds: try b.readU64("time"))
            let input: StateMachineInput
            switch kind {
            case 1, 5:
                let principal = kind == 5 ? Principal(user: try b.readStr("user"), token: TokenID(try b.readU64("token_id"))) : nil
                let client = ClientID(try b.readU64("client_id"))
                let seq = SequenceNumber(try b.readU64("sequence"))
                let opcode = Opcode(rawValue: try b.readU8("opcode"))
                input = .command(client, seq, try Command.decodeBody(opcode: opcode, from: &b), by: principal)
            case 2:
                input = .tick
            case 3:
                input = .detach(ClientID(try b.readU64("client_id")))
            case 4:
                input = .withdraw(ClientID(try b.readU64("client_id")), SequenceNumber(try b.readU64("sequence")))
            case 6:
                var bytes: [UInt8] = []
                for _ in 0..<32 { bytes.append(try b.readU8("token_hash")) }
                input = .bootstrapAuth(TokenHash(bytes: bytes)!)
            case 7:
                let count = try b.readU32("fire_count")
                guard count <= b.readableBytes / 30 else { throw SnapshotError(.malformed, "\(count) fires exceed the entry") }
                var fires: [ScheduleFire] = []
                fires.reserveCapacity(Int(count))
                for _ in 0..<count {
                    fires.append(
                        ScheduleFire(
                            name: try b.readStr("name"), revision: try b.readU64("revision"),
                            slot: Timestamp(milliseconds: try b.readU64("slot")), missed: try b.readU32("missed"),
                            next: Timestamp(milliseconds: try b.readU64("next"))))
                }
                input = .fireSchedules(fires)
            default:
                throw SnapshotError(.malformed, "log entry of unknown kind \(kind)")
            }
            guard b.readableBytes == 0 else { throw SnapshotError(.malformed, "log entry has \(b.readableBytes) extra bytes") }
            return TimedInput(input, at: time)
        } catch let e as ErrorReply {
            throw SnapshotError(.malformed, "log entry: \(e.message)")
        }
    }
}
