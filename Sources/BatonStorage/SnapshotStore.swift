import BatonRaft

#if canImport(Glibc)
import Glibc
#endif

/// Snapshot files: `snapshot-<index, 16 hex digits>.snap`, deflate-compressed, checksummed.
///
/// ```
/// magic "BTNP"  version:u16  index:u64  term:u64  raw_length:u64  compressed_length:u64  crc32:u32
/// compressed bytes (zlib deflate of the state machine's snapshot)      (big-endian; CRC of the compressed bytes)
/// ```
///
/// A snapshot is written to a temporary file, synced, renamed into place, and the directory is synced,
/// so a crash leaves either the old snapshot or the new one, never half of one. The two newest are kept.
public struct SnapshotStore: Sendable {
    public let directory: String
    static let magic: [UInt8] = [0x42, 0x54, 0x4E, 0x50, 0, 1]  // "BTNP", version 1
    static let headerSize = 6 + 8 + 8 + 8 + 8 + 4

    public init(directory: String) throws {
        self.directory = directory
        try FileIO.makeDirectory(directory)
    }

    func path(_ index: LogIndex) -> String {
        "\(directory)/snapshot-\(String(index.rawValue, radix: 16).leftPadded(16)).snap"
    }

    /// Writes `snapshot` durably; returns the size of the file.
    @discardableResult
    public func save(_ snapshot: Snapshot) throws -> Int {
        let compressed = try Zlib.deflate(snapshot.data)
        var file = Self.magic
        file.appendBE(snapshot.index.rawValue)
        file.appendBE(snapshot.term.rawValue)
        file.appendBE(UInt64(snapshot.data.count))
        file.appendBE(UInt64(compressed.count))
        file.appendBE(Zlib.crc32(compressed))
        file.append(contentsOf: compressed)
        let temporary = "\(directory)/snapshot.tmp"
        let fd = try FileIO.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try file.withUnsafeBytes { try FileIO.writeAll(fd, $0, at: 0, path: temporary) }
            try FileIO.fsync(fd, path: temporary)
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        try FileIO.rename(temporary, path(snapshot.index))
        try FileIO.syncDirectory(directory)
        // Keep the newest two; older ones are covered.
        for old in try snapshotFiles().dropLast(2) { try FileIO.remove("\(directory)/\(old)") }
        return file.count
    }

    func snapshotFiles() throws -> [String] {
        try FileIO.list(directory).filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }
    }

    /// The newest snapshot that reads back intact, or nil when there is none. A damaged newest file is
    /// skipped for the one before it (and reported through `skipped`).
    public func loadNewest(skipped: (String) -> Void = { _ in }) throws -> Snapshot? {
        for name in try snapshotFiles().reversed() {
            let path = "\(directory)/\(name)"
            do {
                return try Self.decode(try FileIO.readAll(path), path: path)
            } catch let error as StorageError {
                skipped("\(error)")
            }
        }
        return nil
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> Snapshot {
        guard bytes.count >= headerSize, Array(bytes[0..<6]) == magic else {
            throw StorageError(.notBaton, "\(path): not a Baton snapshot")
        }
        return try bytes.withUnsafeBytes { raw in
            var r = ByteReader(bytes: raw, offset: 6)
            let index = r.read(UInt64.self)!
            let term = r.read(UInt64.self)!
            let rawLength = r.read(UInt64.self)!
            let length = r.read(UInt64.self)!
            let crc = r.read(UInt32.self)!
            guard Int(length) == raw.count - headerSize else { throw StorageError(.truncated, "\(path): truncated snapshot") }
            let compressed = Array(raw[headerSize...])
            guard Zlib.crc32(compressed) == crc else { throw StorageError(.corrupt, "\(path): snapshot checksum mismatch") }
            return Snapshot(
                index: LogIndex(index), term: Term(term), data: try Zlib.inflate(compressed, length: Int(rawLength)))
        }
    }
}
