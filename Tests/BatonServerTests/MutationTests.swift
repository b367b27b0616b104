import BatonCore
import BatonProtocol
import BatonRaft
import BatonTestSupport
import Foundation
import NIOCore
import Testing

@testable import BatonServer

/// Seeded random damage to valid bytes: what a buggy client, a bit flip or a hostile peer sends.
/// Every decoder that reads bytes from outside must answer each result with an error or a value,
/// never a trap (an overflow, an index out of range, an allocation sized by a lying count), and a
/// value it accepts must survive its own encoder unchanged.
struct Mutator {
    var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// One to three random changes to `bytes`.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        for _ in 0...Int.random(in: 0...2, using: &random) {
            let at = out.isEmpty ? 0 : Int.random(in: 0..<out.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where !out.isEmpty: out[at] = UInt8.random(in: 0...255, using: &random)
            case 1 where !out.isEmpty: out[at] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2: out.removeLast(Int.random(in: 0...out.count, using: &random))
            case 3: out.insert(contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
            case 4: overwrite(&out, at: at, with: [UInt32.max, 1 << 31, UInt32(Int32.max), 0, 1].randomElement(using: &random)!)
            case 5: overwrite(&out, at: at, with: [UInt64.max, 1 << 63, UInt64(Int64.max), 0].randomElement(using: &random)!)
            default:  // a slice repeated: counts and lengths that almost agree with the bytes
                let end = min(out.count, at + Int.random(in: 1...16, using: &random))
                out.insert(contentsOf: out[at..<end], at: end)
            }
        }
        return out
    }

    /// A big-endian integer laid over the bytes from `at` (the codecs' fields are big-endian).
    private func overwrite<T: FixedWidthInteger>(_ out: inout [UInt8], at: Int, with value: T) {
        for i in 0..<MemoryLayout<T>.size where at + i < out.count {
            out[at + i] = UInt8(truncatingIfNeeded: value >> ((MemoryLayout<T>.size - 1 - i) * 8))
        }
    }
}

@Suite(.heavy) struct MutationTests {
    static let rounds = 2_000

    /// Client frames: every golden frame of Protocol/golden, damaged, through the frame decoder and
    /// the request or reply decoder.
    @Test func damagedClientFramesAreRefusedOrRoundTrip() async throws {
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Protocol/golden").standardized
        let names = try FileManager.default.contentsOfDirectory(atPath: golden.path).filter { $0.hasSuffix(".hex") }.sorted()
        #expect(names.count >= 40)
        var mutator = Mutator(seed: 1)
        var accepted = 0
        for name in names {
            await Task.yield()  // a long loop would hold a thread the tests beside it need
            let text = try String(contentsOf: golden.appendingPathComponent(name), encoding: .utf8)
            // The hex files: bytes in hex, a "#" starts a comment.
            let frame = text.split(separator: "\n").flatMap { line in
                (line.split(separator: "#", omittingEmptySubsequences: false).first ?? "").split(separator: " ").compactMap { UInt8($0, radix: 16) }
            }
            let isRequest = name.contains(".request")
            for _ in 0..<Self.rounds {
                var buffer = ByteBuffer(bytes: mutator.mutate(frame))
                var decoder = FrameDecoder()
                guard let decoded = try? decoder.decode(buffer: &buffer) else { continue }
                var again = ByteBuffer()
                if isRequest {
                    guard let request = try? Request.decode(opcode: decoded.opcode, body: decoded.body) else { continue }
                    again.writeRequest(request, requestID: decoded.requestID)
                    var decoderAgain = FrameDecoder()
                    let frameAgain = try #require(try decoderAgain.decode(buffer: &again))
                    #expect(try Request.decode(opcode: frameAgain.opcode, body: frameAgain.body) == request, "\(name)")
                } else {
                    guard let reply = try? Reply.decode(opcode: decoded.opcode, body: decoded.body) else { continue }
                    again.writeReply(reply, requestID: decoded.requestID)
                    var decoderAgain = FrameDecoder()
                    let frameAgain = try #require(try decoderAgain.decode(buffer: &again))
                    #expect(try Reply.decode(opcode: frameAgain.opcode, body: frameAgain.body) == reply, "\(name)")
                }
                accepted += 1
            }
        }
        #expect(accepted > 0)  // some damage is still a valid message (a changed key, say)
    }

    /// Peer frames: every message kind, damaged, through the peer decoder.
    @Test func damagedPeerFramesAreRefusedOrRoundTrip() throws {
        var mutator = Mutator(seed: 2)
        for message in PeerCodecTests.samples {
            var full = ByteBuffer()
            RaftEnvelope(from: NodeIndex(1), to: NodeIndex(2), term: Term(3), message: message).encode(into: &full)
            full.moveReaderIndex(forwardBy: 4)  // the length; the transport's frame decoder checks it
            let body = Array(full.readableBytesView)
            for _ in 0..<Self.rounds {
                var damaged = ByteBuffer(bytes: mutator.mutate(body))
                guard case .message(let envelope)? = try? PeerFrame.decode(&damaged) else { continue }
                var again = ByteBuffer()
                envelope.encode(into: &again)
                again.moveReaderIndex(forwardBy: 4)
                #expect(try PeerFrame.decode(&again) == .message(envelope))
            }
        }
    }

    /// Log entries, as a follower reads them from its leader or a node from its own disk.
    @Test func damagedLogEntriesAreRefusedOrRoundTrip() throws {
        let time = Timestamp(milliseconds: 1_764_633_600_000)
        let inputs: [StateMachineInput] = [
            .command(ClientID(7), SequenceNumber(3), .acquireLock(key: "reports/daily", owner: "w", ttl: 10_000, wait: 5_000)),
            .command(ClientID(7), SequenceNumber(4), .renewLock(key: "reports/daily", token: FencingToken(9), ttl: 10_000)),
            .command(ClientID(8), SequenceNumber(1), .addJob(JobSpec(type: "scan", payload: [1, 2, 3], uniqueKey: "u"))),
            .command(ClientID(8), SequenceNumber(2), .claimJob(types: ["scan", "thumb"], worker: "w", wait: 1_000)),
            .command(ClientID(8), SequenceNumber(3), .failJob(JobID(4), token: FencingToken(5), error: "boom")),
            .tick, .detach(ClientID(7)), .withdraw(ClientID(7), SequenceNumber(3)),
        ]
        var mutator = Mutator(seed: 3)
        for input in inputs {
            let bytes = TimedInput(input, at: time).encode()
            for _ in 0..<Self.rounds {
                guard let decoded = try? TimedInput.decode(mutator.mutate(bytes)) else { continue }
                #expect(try TimedInput.decode(decoded.encode()) == decoded)
            }
        }
    }

    /// Snapshots, as a follower receives them from its leader: a damaged one is refused, or gives a
    /// state machine whose own snapshot restores to the same bytes. (Whether the state then makes
    /// sense is not asked: a snapshot's values are trusted, as they come CRC-checked from this
    /// node's disk or from its leader; a token counter at UInt64.max, say, would trap the next grant.)
    @Test func damagedSnapshotsAreRefusedOrRoundTrip() throws {
        var machine = StateMachine()
        let time = Timestamp(milliseconds: 1_000_000)
        var sequence: UInt64 = 0
        func run(_ command: Command, _ client: UInt64) {
            sequence += 1
            _ = machine.apply(.command(ClientID(client), SequenceNumber(sequence), command), at: time)
        }
        run(.acquireLock(key: "a", owner: "o1", ttl: 5_000, wait: 0), 1)
        run(.acquireLock(key: "a", owner: "o2", ttl: 5_000, wait: 10_000), 2)
        run(.addJob(JobSpec(type: "t", payload: [9, 9], maxAttempts: 3, backoff: 100)), 1)
        run(.addJob(JobSpec(type: "t", delay: 60_000)), 1)
        run(.claimJob(types: ["t"], worker: "w", wait: 0), 3)
        run(.claimJob(types: ["t"], worker: "w2", wait: 30_000), 4)
        let bytes = Array(machine.snapshot().readableBytesView)
        var mutator = Mutator(seed: 4)
        var restored = 0
        for _ in 0..<Self.rounds {
            guard let copy = try? StateMachine(restoring: ByteBuffer(bytes: mutator.mutate(bytes))) else { continue }
            let again = Array(copy.snapshot().readableBytesView)
            #expect(Array(try StateMachine(restoring: ByteBuffer(bytes: again)).snapshot().readableBytesView) == again)
            restored += 1
        }
        #expect(restored < Self.rounds)  // most damage is refused
    }
}
