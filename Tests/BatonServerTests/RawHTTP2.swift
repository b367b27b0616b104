import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import Testing

/// An HTTP/2 connection in raw frames, for sending what no HTTP/2 library would: more DATA than a
/// window, a window update past the limit, a request that never ends. Header blocks are HPACK
/// literals without indexing or Huffman coding, which every decoder must accept (RFC 7541 §6.2.2).
///
/// `@unchecked Sendable`: its socket calls block, so tests hand it to `offPool`, one call at a time,
/// and await each before the next; no two threads ever use it at once.
final class RawHTTP2: @unchecked Sendable {
    /// A frame the node sent.
    struct Frame: Sendable {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]

        static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4, goAway: UInt8 = 7,
            windowUpdate: UInt8 = 8

        /// The error code of a RST_STREAM or GOAWAY.
        var errorCode: UInt32? {
            let at = type == Self.rstStream ? 0 : type == Self.goAway ? 4 : -1
            guard at >= 0, payload.count >= at + 4 else { return nil }
            return payload[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    static let flowControlError: UInt32 = 3, protocolError: UInt32 = 1, noError: UInt32 = 0, refusedStream: UInt32 = 7

    let fd: Int32
    private var received: [UInt8] = []

    /// Connects and sends the preface and an empty SETTINGS.
    init(port: Int) throws {
        fd = try rawConnect(port: port)
        // A guard against a hang, not a bound on how fast: a test that waits for a frame that never
        // comes fails after 60 s instead of hanging.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        send(frame(type: Frame.settings, flags: 0, stream: 0, payload: []))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the node closed: what it sent before says why
            offset += n
        }
    }

    func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        HTTP2FrameWriter.frame(type: type, flags: flags, stream: stream, payload: payload)
    }

    /// HEADERS of a Baton request (END_HEADERS; END_STREAM when `endStream`).
    func request(_ operation: String, stream: UInt32, endStream: Bool, clientID: String? = nil) {
        send(HTTP2FrameWriter.request(operation, stream: stream, endStream: endStream, clientID: clientID))
    }

    func data(_ bytes: [UInt8], stream: UInt32, endStream: Bool) {
        send(frame(type: Frame.data, flags: endStream ? 0x01 : 0, stream: stream, payload: bytes))
    }

    func windowUpdate(stream: UInt32, increment: UInt32) {
        send(frame(type: Frame.windowUpdate, flags: 0, stream: stream,
                   payload: [UInt8(increment >> 24 & 0x7F), UInt8(increment >> 16 & 0xFF), UInt8(increment >> 8 & 0xFF), UInt8(increment & 0xFF)]))
    }

    /// The next frame, or nil when the node closed the connection.
    func next() -> Frame? {
        while true {
            if received.count >= 9 {
                let length = Int(received[0]) << 16 | Int(received[1]) << 8 | Int(received[2])
                if received.count >= 9 + length {
                    let f = Frame(
                        type: received[3], flags: received[4],
                        stream: received[5..<9].reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF,
                        payload: Array(received[9..<9 + length]))
                    received.removeFirst(9 + length)
                    return f
                }
            }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            received += buffer[0..<n]
        }
    }

    /// Frames until one matches `stop` (included), or until the node closes the connection.
    func frames(until stop: (Frame) -> Bool) -> [Frame] {
        var seen: [Frame] = []
        while let f = next() {
            seen.append(f)
            if stop(f) { break }
        }
        return seen
    }

    /// The Baton error code of an answer body sent on `stream` among `frames` (its DATA).
    static func errorCode(on stream: UInt32, in frames: [Frame]) -> ErrorCode? {
        let body = frames.filter { $0.type == Frame.data && $0.stream == stream }.flatMap(\.payload)
        guard case .error(let e)? = try? Reply.decode(opcode: .error, body: ByteBuffer(bytes: body), version: HTTP2Route.bodyVersion)
        else { return nil }
        return e.code
    }
}

/// HTTP/2 frames as bytes, written by hand (see `RawHTTP2`).
enum HTTP2FrameWriter {
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
    }

    /// HEADERS of a Baton request (END_STREAM when `endStream`), every field an HPACK literal without
    /// indexing, `extra` fields after the usual ones; a block over 16,384 bytes goes on in
    /// CONTINUATION frames, END_HEADERS on the last.
    static func request(
        _ operation: String, stream: UInt32, endStream: Bool, clientID: String? = nil, extra: [(String, String)] = []
    ) -> [UInt8] {
        var fields = [(":method", "POST"), (":scheme", "http"), (":path", "/baton/v1/\(operation)"), (":authority", "baton"),
                      ("content-type", HTTP2Route.contentType)]
        if let clientID { fields.append((HTTP2Route.clientIDHeader, clientID)) }
        var block: [UInt8] = []
        for (name, value) in fields + extra {
            block += [0x00] + string(name) + string(value)
        }
        var frames: [UInt8] = []
        var chunks = stride(from: 0, to: max(block.count, 1), by: 16_384).map { Array(block[$0..<min(block.count, $0 + 16_384)]) }
        if chunks.isEmpty { chunks = [[]] }
        for (i, chunk) in chunks.enumerated() {
            let last = i == chunks.count - 1
            let flags: UInt8 = (last ? 0x04 : 0) | (i == 0 && endStream ? 0x01 : 0)
            frames += frame(type: i == 0 ? 1 : 9, flags: flags, stream: stream, payload: chunk)
        }
        return frames
    }

    /// An HPACK string literal, not Huffman coded: its length as a 7-bit-prefix integer, then the bytes.
    static func string(_ s: String) -> [UInt8] {
        var length = s.utf8.count
        var out: [UInt8] = []
        if length < 127 {
            out.append(UInt8(length))
        } else {
            out.append(127)
            length -= 127
            while length >= 128 {
                out.append(UInt8(length % 128 + 128))
                length /= 128
            }
            out.append(UInt8(length))
        }
        return out + Array(s.utf8)
    }
}
