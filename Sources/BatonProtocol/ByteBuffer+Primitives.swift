import NIOCore

// The primitive types of Protocol/PROTOCOL.md, "Primitive types". All integers are big-endian.
//   str   = u16 byte count, then that many bytes of UTF-8
//   bytes = u32 byte count, then that many bytes

extension ByteBuffer {
    public mutating func readU8(_ field: String) throws(ErrorReply) -> UInt8 {
        guard let v = readInteger(as: UInt8.self) else { throw .truncated(field) }
        return v
    }
    public mutating func readU16(_ field: String) throws(ErrorReply) -> UInt16 {
        guard let v = readInteger(endianness: .big, as: UInt16.self) else { throw .truncated(field) }
        return v
    }
    public mutating func readU32(_ field: String) throws(ErrorReply) -> UInt32 {
        guard let v = readInteger(endianness: .big, as: UInt32.self) else { throw .truncated(field) }
        return v
    }
    public mutating func readI32(_ field: String) throws(ErrorReply) -> Int32 {
        guard let v = readInteger(endianness: .big, as: Int32.self) else { throw .truncated(field) }
        return v
    }
    public mutating func readU64(_ field: String) throws(ErrorReply) -> UInt64 {
        guard let v = readInteger(endianness: .big, as: UInt64.self) else { throw .truncated(field) }
        return v
    }

    /// Reads a `str`; rejects bytes that are not valid UTF-8 with `invalidArgument`.
    public mutating func readStr(_ field: String) throws(ErrorReply) -> String {
        let count = try readU16(field)
        guard let slice = readSlice(length: Int(count)) else { throw .truncated(field) }
        let s = slice.readableBytesView.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) }
            ?? String(validating: Array(slice.readableBytesView), as: UTF8.self)
        guard let s else { throw ErrorReply(.invalidArgument, "field '\(field)' is not valid UTF-8") }
        return s
    }

    public mutating func readBytes(_ field: String) throws(ErrorReply) -> [UInt8] {
        let count = try readU32(field)
        guard let bytes = readBytes(length: Int(count)) else { throw .truncated(field) }
        return bytes
    }

    /// Writes a `str`. Strings longer than 65,535 bytes of UTF-8 are cut at that length; the node's
    /// limits on keys and names are far below it.
    public mutating func writeStr(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            let n = min(utf8.count, Int(UInt16.max))
            writeInteger(UInt16(n), endianness: .big)
            writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[0..<n]))
        }
    }

    public mutating func writeBytesField(_ bytes: [UInt8]) {
        writeInteger(UInt32(bytes.count), endianness: .big)
        writeBytes(bytes)
    }

    public mutating func writeU8(_ v: UInt8) { writeInteger(v) }
    public mutating func writeU16(_ v: UInt16) { writeInteger(v, endianness: .big) }
    public mutating func writeU32(_ v: UInt32) { writeInteger(v, endianness: .big) }
    public mutating func writeI32(_ v: Int32) { writeInteger(v, endianness: .big) }
    public mutating func writeU64(_ v: UInt64) { writeInteger(v, endianness: .big) }
}
