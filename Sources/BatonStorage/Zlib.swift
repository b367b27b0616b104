import CZlib

/// zlib's CRC-32 and deflate, as the storage formats use them. zlib is the field's own library for
/// both; nothing here is written by hand but the calls.
public enum Zlib {
    /// CRC-32 (the IEEE polynomial, as in gzip and zip) of `bytes`, continuing from `crc`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        UInt32(CZlib.crc32(UInt(crc), bytes.bindMemory(to: UInt8.self).baseAddress, uInt(bytes.count)))
    }

    public static func crc32(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0, continuing: crc) }
    }

    /// `bytes` compressed with deflate (zlib format) at `level` (1 fastest … 9 smallest).
    public static func deflate(_ bytes: [UInt8], level: Int32 = 1) throws -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in
                compress2(o.baseAddress, &capacity, i.baseAddress, uLong(i.count), level)
            }
        }
        guard status == Z_OK else { throw StorageError(.compression, "deflate failed with zlib status \(status)") }
        out.removeSubrange(Int(capacity)...)
        return out
    }

    /// Inflates `bytes`, which must decompress to exactly `length` bytes.
    public static func inflate(_ bytes: [UInt8], length: Int) throws -> [UInt8] {
        var size = uLong(length)
        var out = [UInt8](repeating: 0, count: length)
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in
                uncompress(o.baseAddress, &size, i.baseAddress, uLong(i.count))
            }
        }
        guard status == Z_OK, Int(size) == length else {
            throw StorageError(.compression, "inflate failed (zlib status \(status), \(size) of \(length) bytes)")
        }
        return out
    }
}

/// A storage failure: what kind (to match on), and a message that says which file and what is wrong.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Hashable {
        /// A system call failed (open, write, fsync, rename, …).
        case io
        /// zlib failed to compress or decompress.
        case compression
        /// The file is not what Baton writes there (a bad header or name, an unknown record type).
        case notBaton
        /// The file ends in the middle of something.
        case truncated
        /// A checksum does not match: the bytes changed after they were written.
        case corrupt
        /// The log's entries do not follow each other or the snapshot.
        case gap
    }

    public var code: Code
    public var description: String
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
