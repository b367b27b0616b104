import BatonRaft
import Synchronization

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
/// A snapshot is written to a temporary file of its own, synced, renamed into place, and the directory
/// is synced, so a crash leaves either the old snapshot or the new one, never half of one. The two
/// newest are kept.
///
/// Two saves may run at once (the log writer installs the leader's snapshot while the thread pool
/// saves the member's own). Each writes its own temporary file (`snapshot-<index>.<n>.tmp`), and the
/// renames are serialized: a save whose index is not above the newest already in place is dropped
/// (`SaveOutcome.superseded`), never renamed over the newer state.
public struct SnapshotStore: Sendable {
    public let directory: String
    static let magic: [UInt8] = [0x42, 0x54, 0x4E, 0x50, 0, 1]  // "BTNP", version 1
    static let headerSize = 6 + 8 + 8 + 8 + 8 + 4
    /// What the saves of this store share: the newest index in place, and numbers for temporary files.
    private let renames: SnapshotRenames
    /// Called by `save` with the snapshot's index after its temporary file is written and synced,
    /// before the rename: tests inject a second save there.
    package var beforeRename: (@Sendable (LogIndex) -> Void)?

    /// What became of a save.
    public enum SaveOutcome: Hashable, Sendable {
        /// In place and durable; the file's size.
        case saved(bytes: Int)
        /// Not written: a snapshot at this index or a later one is in place already.
        case superseded(by: LogIndex)
    }

    /// Opens (creating it if needed) the snapshot directory, and removes temporary files that a
    /// killed save left behind.
    public init(directory: String) throws {
        self.directory = directory
        try FileIO.makeDirectory(directory)
        for name in try FileIO.list(directory) where name.hasPrefix("snapshot") && name.hasSuffix(".tmp") {
            try FileIO.remove("\(directory)/\(name)")
        }
        let newest = try FileIO.list(directory).filter(Self.isSnapshotFile).max().flatMap(Self.index(ofFile:))
        self.renames = SnapshotRenames(newest: newest ?? LogIndex(0))
    }

    func path(_ index: LogIndex) -> String {
        "\(directory)/\(Self.fileName(index))"
    }

    static func fileName(_ index: LogIndex) -> String {
        "snapshot-\(String(index.rawValue, radix: 16).leftPadded(16)).snap"
    }

    static func isSnapshotFile(_ name: String) -> Bool {
        name.hasPrefix("snapshot-") && name.hasSuffix(".snap")
    }

    static func index(ofFile name: String) -> LogIndex? {
        UInt64(name.dropFirst("snapshot-".count).dropLast(".snap".count), radix: 16).map(LogIndex.init)
    }

    /// Writes `snapshot` durably, unless a snapshot at its index or a later one is in place already.
    @discardableResult
    public func save(_ snapshot: Snapshot) throws -> SaveOutcome {
        if let newer = renames.supersedes(snapshot.index) { return .superseded(by: newer) }
        let compressed = try Zlib.deflate(snapshot.data)
        var file = Self.magic
        file.appendBE(snapshot.index.rawValue)
        file.appendBE(snapshot.term.rawValue)
        file.appendBE(UInt64(snapshot.data.count))
        file.appendBE(UInt64(compressed.count))
        file.appendBE(Zlib.crc32(compressed))
        file.append(contentsOf: compressed)
        let temporary = "\(directory)/snapshot-\(String(snapshot.index.rawValue, radix: 16).leftPadded(16)).\(renames.nextTemporary()).tmp"
        let fd = try FileIO.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try file.withUnsafeBytes { try FileIO.writeAll(fd, $0, at: 0, path: temporary) }
            try FileIO.fsync(fd, path: temporary)
            close(fd)
        } catch {
            close(fd)
            try? FileIO.remove(temporary)
            throw error
        }
        beforeRename?(snapshot.index)
        return try renames.inPlace(snapshot.index) { newer in
            if let newer {
                try FileIO.remove(temporary)
                return .superseded(by: newer)
            }
            try FileIO.rename(temporary, path(snapshot.index))
            try FileIO.syncDirectory(directory)
            // Keep the newest two; older ones are covered.
            for old in try snapshotFiles().dropLast(2) { try FileIO.remove("\(directory)/\(old)") }
            return .saved(bytes: file.count)
        }
    }

    func snapshotFiles() throws -> [String] {
        try FileIO.list(directory).filter(Self.isSnapshotFile).sorted()
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
