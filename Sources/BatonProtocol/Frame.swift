import NIOCore

/// One frame as it travels on the wire:
///
/// ```
/// length:u32  opcode:u8  flags:u8  request_id:u32  body:bytes[length - 6]
/// ```
///
/// `length` counts every byte after itself (so it is at least 6). Integers are big-endian.
public struct Frame: Hashable, Sendable {
    /// Bytes of opcode, flags and request id: the part of the header that `length` counts.
    public static let headerAfterLength = 6
    /// The whole header, length included.
    public static let headerSize = 10
    /// The default and largest allowed frame size: the most bytes `length` may count.
    public static let defaultMaxSize = 1 << 20

    public var opcode: Opcode
    /// Reserved: senders write zero, receivers ignore it.
    public var flags: UInt8
    public var requestID: RequestID
    public var body: ByteBuffer

    public init(opcode: Opcode, flags: UInt8 = 0, requestID: RequestID, body: ByteBuffer) {
        self.opcode = opcode
        self.flags = flags
        self.requestID = requestID
        self.body = body
    }
}

extension ByteBuffer {
    /// Writes one frame whose body `writeBody` appends; the length is filled in afterwards.
    @inlinable
    public mutating func writeFrame(
        opcode: Opcode, requestID: RequestID, _ writeBody: (inout ByteBuffer) -> Void
    ) {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0))
        writeInteger(opcode.rawValue)
        writeInteger(UInt8(0))
        writeInteger(requestID.rawValue, endianness: .big)
        writeBody(&self)
        setInteger(UInt32(writerIndex - lengthIndex - 4), at: lengthIndex, endianness: .big)
    }

    public mutating func writeFrame(_ frame: Frame) {
        writeInteger(UInt32(Frame.headerAfterLength + frame.body.readableBytes), endianness: .big)
        writeInteger(frame.opcode.rawValue)
        writeInteger(frame.flags)
        writeInteger(frame.requestID.rawValue, endianness: .big)
        writeImmutableBuffer(frame.body)
    }
}

/// Splits a byte stream into frames. It never consumes a partial frame, and it refuses a frame whose
/// length exceeds `maxFrameSize` (or is below the header size) before reading its body.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    public let maxFrameSize: Int

    public init(maxFrameSize: Int = Frame.defaultMaxSize) {
        self.maxFrameSize = maxFrameSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length <= maxFrameSize else {
            throw ErrorReply(.frameTooLarge, "frame of \(length) bytes exceeds the maximum of \(maxFrameSize)")
        }
        guard length >= Frame.headerAfterLength else {
            throw ErrorReply(.malformedFrame, "frame length \(length) is shorter than the 6-byte header")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let opcode = buffer.readInteger(as: UInt8.self)!
        let flags = buffer.readInteger(as: UInt8.self)!
        let requestID = buffer.readInteger(endianness: .big, as: UInt32.self)!
        let body = buffer.readSlice(length: Int(length) - Frame.headerAfterLength)!
        return Frame(opcode: Opcode(rawValue: opcode), flags: flags, requestID: RequestID(requestID), body: body)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try decode(buffer: &buffer)
    }
}
