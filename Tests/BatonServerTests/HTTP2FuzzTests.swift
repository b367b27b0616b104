import BatonProtocol
import BatonRaft
import BatonTestSupport
import Foundation
import Testing

/// Random and mutated HTTP/2 byte streams against the node's HTTP/2 port, seeded so a failure replays
/// (`BATON_SEED=<n>` runs that seed alone; `BATON_FUZZ_CASES` sets how many, 300 in CI). Each case
/// builds a plausible client conversation (preface, SETTINGS, requests with bodies, resets, window
/// updates, PINGs), then damages it: flipped bytes, cut frames, repeated or random chunks. The node
/// must survive every case: afterwards it answers over HTTP/2 and TCP. Run it under AddressSanitizer
/// (docs/testing.md, "Memory safety") to also catch what does not crash.
@Suite(.heavy, .timeLimit(.minutes(5))) struct HTTP2FuzzTests {
    static let cases = Int(ProcessInfo.processInfo.environment["BATON_FUZZ_CASES"] ?? "") ?? 300

    /// One client conversation before it is damaged.
    static func conversation(_ rng: inout SplitMix64) -> [UInt8] {
        typealias h2 = HTTP2FrameWriter
        var bytes = rng.next() % 8 == 0 ? [] : Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        bytes += h2.frame(type: 4, flags: 0, stream: 0, payload: rng.next() % 4 == 0 ? [0, 4, 0, 0, 0xFF, 0xFF] : [])
        var stream: UInt32 = 1
        for _ in 0..<(1 + rng.next() % 6) {
            switch rng.next() % 6 {
            case 0, 1:
                let operations = ["ping", "job_add", "lock_acquire", "lock_get", "node_status", "nothing"]
                let body: [UInt8] = rng.next() % 2 == 0 ? [] : (0..<(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                bytes += h2.request(operations[Int(rng.next() % 6)], stream: stream, endStream: body.isEmpty, clientID: "\(1 + rng.next() % 4)")
                if !body.isEmpty { bytes += h2.frame(type: 0, flags: 1, stream: stream, payload: body) }
                stream += 2
            case 2:
                bytes += h2.frame(type: 3, flags: 0, stream: UInt32(rng.next() % UInt64(stream + 2)), payload: [0, 0, 0, 8])
            case 3:
                bytes += h2.frame(type: 8, flags: 0, stream: UInt32(rng.next() % 4), payload: [0, 0, 0x10, 0])
            case 4:
                bytes += h2.frame(type: 6, flags: 0, stream: 0, payload: [UInt8](repeating: 7, count: 8))
            default:
                bytes += h2.frame(type: UInt8(rng.next() % 16), flags: UInt8(truncatingIfNeeded: rng.next()), stream: UInt32(rng.next() % 8),
                                  payload: (0..<(rng.next() % 32)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
        }
        return bytes
    }

    /// `bytes`, damaged in 1 to 4 ways.
    static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        for _ in 0..<(1 + rng.next() % 4) where !b.isEmpty {
            let at = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 5 {
            case 0: b[at] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
            case 1: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.removeSubrange(at..<min(b.count, at + Int(rng.next() % 16)))
            case 3: b.insert(contentsOf: b[at..<min(b.count, at + Int(rng.next() % 64))], at: at)
            default: b.insert(contentsOf: (0..<(rng.next() % 32)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            }
        }
        return b
    }

    @Test func damagedConversationsLeaveTheNodeServing() async throws {
        try await withNode({ $0.http2Port = 0 }) { node in
            let port = try #require(node.server.http2Port)
            let seeds: [UInt64] = ProcessInfo.processInfo.environment["BATON_SEED"].flatMap(UInt64.init).map { [$0] }
                ?? (0..<UInt64(Self.cases)).map { $0 }
            for seed in seeds {
                var rng = SplitMix64(seed: seed)
                let bytes = Self.mutate(Self.conversation(&rng), &rng)
                let answered = try await offPool { try Self.send(bytes, to: port) }
                #expect(answered >= 0, "seed \(seed)")
            }
            // Still serving, on both ports.
            let h2 = try RawHTTP2(port: port)
            h2.request("ping", stream: 1, endStream: true)
            let frames = try await offPool { h2.frames { $0.stream == 1 && $0.type == RawHTTP2.Frame.data } }
            #expect(frames.last?.payload.count == 8, "no PONG after \(seeds.count) damaged conversations")
            let client = node.client()
            _ = try await client.serverTime()
            await client.shutdown()
        }
    }

    /// Sends `bytes`, ends the sending side, and reads to the close; returns how many bytes came back.
    static func send(_ bytes: [UInt8], to port: Int) throws -> Int {
        let fd = try rawConnect(port: port)
        defer { close(fd) }
        // A guard against a hang, not a bound on how fast.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { break }  // the node closed already
            offset += n
        }
        shutdown(fd, Int32(SHUT_WR))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return total }
            if n < 0 { return errno == ECONNRESET ? total : -1 }
            total += n
        }
    }
}
