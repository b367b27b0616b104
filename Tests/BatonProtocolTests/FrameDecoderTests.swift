import BatonProtocol
import NIOCore
import NIOTestUtils
import Testing

@Suite struct FrameDecoderTests {
    func frame(_ request: Request, id: UInt32) -> (ByteBuffer, Frame) {
        var b = ByteBuffer()
        b.writeRequest(request, requestID: RequestID(id))
        var body = ByteBuffer()
        request.encodeBody(into: &body)
        return (b, Frame(opcode: request.opcode, requestID: RequestID(id), body: body))
    }

    @Test func decodesByteByByteAndInBulk() throws {
        let cases = goldenFrames.enumerated().compactMap { i, g -> (ByteBuffer, [Frame])? in
            guard case .request(let r) = g.message else { return nil }
            let (bytes, f) = frame(r, id: UInt32(i + 1))
            return (bytes, [f])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: cases, decoderFactory: { FrameDecoder() })
    }

    @Test func manyFramesInOneBuffer() throws {
        var all = ByteBuffer()
        for i in 1...100 { all.writeRequest(.ping, requestID: RequestID(UInt32(i))) }
        var decoder = FrameDecoder()
        var ids: [UInt32] = []
        while let f = try decoder.decode(buffer: &all) { ids.append(f.requestID.rawValue) }
        #expect(ids == Array(1...100))
    }

    @Test func partialFrameIsNotConsumed() throws {
        var b = ByteBuffer()
        b.writeRequest(.query(.getLock(key: "abc")), requestID: RequestID(1))
        var partial = b.getSlice(at: 0, length: b.readableBytes - 1)!
        var decoder = FrameDecoder()
        #expect(try decoder.decode(buffer: &partial) == nil)
        #expect(partial.readerIndex == 0)
    }

    @Test func frameLargerThanTheMaximumIsRefusedBeforeItsBody() {
        var b = ByteBuffer()
        b.writeInteger(UInt32(2048), endianness: .big)
        var decoder = FrameDecoder(maxFrameSize: 1024)
        #expect(throws: ErrorReply(.frameTooLarge, "frame of 2048 bytes exceeds the maximum of 1024")) {
            try decoder.decode(buffer: &b)
        }
    }

    @Test func lengthShorterThanTheHeaderIsMalformed() {
        var b = ByteBuffer(bytes: [0, 0, 0, 3, 1, 0, 0])
        var decoder = FrameDecoder()
        #expect(throws: ErrorReply.self) { try decoder.decode(buffer: &b) }
    }
}

@Suite struct MessageDecodingTests {
    func body(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    @Test func unknownOpcode() {
        #expect(throws: ErrorReply(.unknownOpcode, "unknown opcode 0x7E")) {
            try Request.decode(opcode: Opcode(rawValue: 0x7E), body: body([]))
        }
    }

    @Test func fieldRunningPastTheEndIsMalformed() {
        // LOCK_GET with a key length of 10 but only 3 bytes.
        let error = #expect(throws: ErrorReply.self) {
            try Request.decode(opcode: .lockGet, body: body([0, 10, 0x61, 0x62, 0x63]))
        }
        #expect(error?.code == .malformedFrame)
        #expect(error?.message.contains("key") == true)
    }

    @Test func trailingBytesAreMalformed() {
        let error = #expect(throws: ErrorReply.self) {
            try Request.decode(opcode: .ping, body: body([1]))
        }
        #expect(error?.code == .malformedFrame)
    }

    @Test func invalidUTF8IsAnInvalidArgument() {
        let error = #expect(throws: ErrorReply.self) {
            try Request.decode(opcode: .lockGet, body: body([0, 2, 0xC3, 0x28]))
        }
        #expect(error?.code == .invalidArgument)
    }

    @Test func unknownJobStateInAListFilter() {
        var b = ByteBuffer()
        b.writeStr("")
        b.writeU8(9)
        b.writeU64(0)
        b.writeU16(0)
        let error = #expect(throws: ErrorReply.self) { try Request.decode(opcode: .jobList, body: b) }
        #expect(error?.code == .invalidArgument)
    }

    @Test func everyErrorCodeHasANameAndARetryRule() {
        #expect(Set(ErrorCode.all.map(\.rawValue)).count == ErrorCode.all.count)
        for code in ErrorCode.all {
            #expect(!code.name.hasPrefix("ERROR_"))
        }
        #expect(ErrorCode.all.filter(\.isRetriable) == [.shuttingDown, .notLeader])
    }
}
