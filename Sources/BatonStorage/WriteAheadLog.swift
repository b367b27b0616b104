import BatonRaft

#if canImport(Glibc)
import Glibc
#endif

/// The write-ahead log: append-only segment files of checksummed records.
///
/// A segment is named `wal-<first index, 16 hex digits>.log` (one above the previous segment's
/// name when its first index is not: names grow in the order segments are written) and starts with an 8-byte header
/// (`BTNW`, version 1, two reserved bytes). Then records:
///
/// ```
/// length:u32  crc32:u32  type:u8  payload          (big-endian; length counts type + payload;
///                                                    the CRC-32 covers type + payload)
/// type 1, entry:       term:u64  index:u64  data
/// type 2, hard state:  term:u64  vote:u64  commit:u64
/// ```
///
/// An entry whose index is not above the last one replaces the log from that index on (Raft's
/// conflicting-suffix rule). Not thread-safe: one owner calls it, from one thread at a time.
///
/// Preallocation: the segment being written is extended ahead of its records with written zeros
/// (`preallocationBytes` at a time), so a group commit overwrites blocks that already belong to the
/// file and its `fdatasync` carries no file-size change (on ext4, no journal commit: one flush
/// instead of two). A record length of zero ends the log: in the last segment, a tail of zeros is
/// space not yet written. A full segment is cut back to its records before the next one starts.
public final class WriteAheadLog {
    public enum SyncMode: String, Sendable, Codable {
        /// `fdatasync` after every batch: nothing acknowledged is lost on a crash or power loss.
        case always
        /// Never sync: for tests and throw-away nodes. A crash of the machine loses recent writes.
        case none
    }

    static let segmentMagic: [UInt8] = [0x42, 0x54, 0x4E, 0x57, 0, 1, 0, 0]  // "BTNW", version 1
    static let recordHeader = 9
    /// The unit in which a write that was not synced may reach the disk, or not, after a power loss
    /// (the page cache's page; segments start page-aligned).
    static let tornPageSize = 4096

    public let directory: String
    public let segmentSize: Int
    public let syncMode: SyncMode
    private var fd: Int32 = -1
    private var currentPath = ""
    /// Bytes of records (and header) in the current segment: where the next write goes.
    private(set) var currentSize = 0
    /// The current segment's length on disk, zeros past `currentSize`.
    private var filledSize = 0
    /// How far ahead of the records the current segment is filled with zeros.
    public let preallocationBytes: Int
    /// First index of each segment, oldest first (the last is the one being written).
    private(set) var segments: [(first: LogIndex, path: String)] = []
    public private(set) var lastIndex = LogIndex.zero
    /// Bytes of records written since this log was opened (a measure of growth, for snapshots).
    public private(set) var bytesWritten = 0
    private var buffer: [UInt8] = []
    /// Group commits synced so far (`.always` mode).
    private(set) var syncs = 0
    /// Records written to the current segment by `commit(sync: false)` and not yet synced.
    private var writtenUnsynced = false
    /// Index of the first entry in `buffer`, which names a segment started for it.
    private var bufferFirstIndex: LogIndex?
    /// The newest hard state appended or recovered; written at the head of every new segment.
    private var latestHardState: HardState?

    /// What `open` found on disk.
    public struct Recovered: Sendable {
        public var entries: [LogEntry]
        public var hardState: HardState
        /// Bytes cut from the end of the last segment (a torn write), if any.
        public var truncatedBytes: Int
    }

    /// Opens (or creates) the log in `directory` and reads back every entry after `after`.
    /// A torn tail is cut off; corruption anywhere else throws.
    public init(directory: String, segmentSize: Int = 64 << 20, syncMode: SyncMode = .always) throws {
        self.directory = directory
        self.segmentSize = segmentSize
        self.syncMode = syncMode
        self.preallocationBytes = min(1 << 20, max(4096, segmentSize))
        try FileIO.makeDirectory(directory)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    public func recover(after snapshotIndex: LogIndex = .zero) throws -> Recovered {
        let names = try FileIO.list(directory).filter { $0.hasPrefix("wal-") && $0.hasSuffix(".log") }
        var entries: [LogEntry] = []
        var hardState = HardState()
        var truncated = 0
        var lastSegmentEnd = 0
        segments = []
        for (i, name) in names.enumerated() {
            let path = "\(directory)/\(name)"
            guard let first = UInt64(name.dropFirst(4).dropLast(4), radix: 16) else {
                throw StorageError(.notBaton, "\(path): not a segment name")
            }
            let isLast = i == names.count - 1
            let bytes = try FileIO.readAll(path)
            let end = try Self.scan(bytes, path: path, isLast: isLast) { type, payload in
                var r = ByteReader(bytes: payload, offset: 0)
                switch type {
                case 1:
                    guard let term = r.read(UInt64.self), let index = r.read(UInt64.self) else {
                        throw StorageError(.truncated, "\(path): short entry record")
                    }
                    let entry = LogEntry(
                        term: Term(term), index: LogIndex(index), data: Array(payload[r.offset...]))
                    if let last = entries.last, entry.index <= last.index {
                        entries.removeLast(entries.count - (entries.firstIndex { $0.index >= entry.index } ?? entries.count))
                    }
                    entries.append(entry)
                case 2:
                    guard let t = r.read(UInt64.self), let v = r.read(UInt64.self), let c = r.read(UInt64.self) else {
                        throw StorageError(.truncated, "\(path): short hard-state record")
                    }
                    hardState = HardState(term: Term(t), vote: NodeIndex(v), commit: LogIndex(c))
                    latestHardState = hardState
                default:
                    throw StorageError(.notBaton, "\(path): unknown record type \(type)")
                }
            }
            if isLast && end >= Self.segmentMagic.count && bytes[end...].allSatisfy({ $0 == 0 }) {
                // Only zeros after the records: preallocated space, not yet written.
            } else if end < bytes.count || end < Self.segmentMagic.count {
                // (An empty file too: a segment created, and killed before its header was written.)
                truncated = bytes.count - end
                if end < Self.segmentMagic.count {
                    try FileIO.remove(path)  // a segment torn before its header was complete
                    try FileIO.syncDirectory(directory)
                    continue
                }
                try FileIO.truncate(path, to: end)
            }
            segments.append((LogIndex(first), path))
            lastSegmentEnd = end
        }
        lastIndex = entries.last?.index ?? snapshotIndex
        if lastIndex < snapshotIndex { lastIndex = snapshotIndex }
        entries.removeAll { $0.index <= snapshotIndex }
        if let last = segments.last {
            currentPath = last.path
            filledSize = FileIO.size(last.path)
            currentSize = lastSegmentEnd
            fd = try FileIO.open(last.path, O_WRONLY)
        }
        return Recovered(entries: entries, hardState: hardState, truncatedBytes: truncated)
    }

    /// Calls `record` for each valid record of a segment; returns where the valid part ends.
    /// In the last segment a bad record with nothing valid after it is a torn tail; anything else is corruption.
    static func scan(
        _ bytes: [UInt8], path: String, isLast: Bool, _ record: (UInt8, UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int {
        guard bytes.count >= segmentMagic.count else {
            if isLast { return 0 }
            throw StorageError(.truncated, "\(path): segment shorter than its header")
        }
        if isLast && bytes[0..<segmentMagic.count].allSatisfy({ $0 == 0 }) {
            return 0  // preallocated, but its header never reached the disk
        }
        guard Array(bytes[0..<segmentMagic.count]) == segmentMagic else {
            throw StorageError(.notBaton, "\(path): not a Baton log segment (bad header)")
        }
        return try bytes.withUnsafeBytes { raw in
            var offset = segmentMagic.count
            while offset < raw.count {
                guard let (type, payload, next) = parseRecord(raw, at: offset) else {
                    if isLast && raw[offset...].allSatisfy({ $0 == 0 }) {
                        return offset  // preallocated space: the end of the log
                    }
                    guard isLast else {
                        throw StorageError(.corrupt, "\(path): corrupt record at byte \(offset) of a segment that is not the last; refusing to start")
                    }
                    // A page of the last, unsynced write that never reached the disk reads as it was
                    // before: the records already synced, then preallocated zeros to the end of the
                    // page. What follows it was not synced either (a sync covers every earlier page),
                    // so it is a torn tail too. Anything else before valid records is corruption.
                    let pageEnd = min(raw.count, (offset / tornPageSize + 1) * tornPageSize)
                    if raw[offset..<pageEnd].allSatisfy({ $0 == 0 }) { return offset }
                    var probe = offset + 1
                    while probe + recordHeader <= raw.count {
                        if parseRecord(raw, at: probe) != nil {
                            throw StorageError(.corrupt, "\(path): corrupt record at byte \(offset) followed by valid records; refusing to start")
                        }
                        probe += 1
                    }
                    return offset
                }
                try record(type, payload)
                offset = next
            }
            return offset
        }
    }

    /// One record at `offset`, if it is complete and its checksum matches.
    static func parseRecord(_ raw: UnsafeRawBufferPointer, at offset: Int) -> (UInt8, UnsafeRawBufferPointer, Int)? {
        var r = ByteReader(bytes: raw, offset: offset)
        guard let length = r.read(UInt32.self), let crc = r.read(UInt32.self), length >= 1,
            Int(length) <= raw.count - r.offset
        else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: raw[r.offset..<r.offset + Int(length)])
        guard Zlib.crc32(body) == crc else { return nil }
        return (body[0], UnsafeRawBufferPointer(rebasing: body[1...]), r.offset + Int(length))
    }

    // MARK: Writing

    /// Adds entries to the pending write. Entries at or below the last index replace the log from there.
    public func append(_ entries: [LogEntry]) {
        for e in entries {
            var body: [UInt8] = [1]
            body.reserveCapacity(17 + e.data.count)
            body.appendBE(e.term.rawValue)
            body.appendBE(e.index.rawValue)
            body.append(contentsOf: e.data)
            addRecord(body)
            if bufferFirstIndex == nil { bufferFirstIndex = e.index }
            lastIndex = e.index
        }
    }

    public func append(_ hardState: HardState) {
        latestHardState = hardState
        addRecord(Self.hardStateRecord(hardState))
    }

    private static func hardStateRecord(_ hardState: HardState) -> [UInt8] {
        var body: [UInt8] = [2]
        body.appendBE(hardState.term.rawValue)
        body.appendBE(hardState.vote.rawValue)
        body.appendBE(hardState.commit.rawValue)
        return body
    }

    private func addRecord(_ body: [UInt8]) {
        Self.appendRecord(body, to: &buffer)
    }

    /// A record as it lies on disk: length, CRC32 of the body, body.
    private static func appendRecord(_ body: [UInt8], to bytes: inout [UInt8]) {
        bytes.appendBE(UInt32(body.count))
        bytes.appendBE(Zlib.crc32(body))
        bytes.append(contentsOf: body)
    }

    /// Writes what was appended and, in `.always` mode, syncs it: one `write` and one `fdatasync` for
    /// everything appended since the last call (group commit). Starts a new segment when the current
    /// one is full. With `sync` false it only writes: the records become durable with the next sync.
    public func commit(sync: Bool = true) throws {
        if !buffer.isEmpty {
            if fd < 0 || currentSize >= segmentSize {
                try startSegment(first: bufferFirstIndex ?? LogIndex(lastIndex.rawValue + 1))
            }
            if currentSize + buffer.count > filledSize { try preallocate(through: currentSize + buffer.count) }
            try buffer.withUnsafeBytes { try FileIO.writeAll(fd, $0, at: currentSize, path: currentPath) }
            currentSize += buffer.count
            bytesWritten += buffer.count
            buffer.removeAll(keepingCapacity: true)
            bufferFirstIndex = nil
            writtenUnsynced = true
        }
        guard sync && writtenUnsynced else { return }
        if syncMode == .always {
            try FileIO.fdatasync(fd, path: currentPath)
            syncs += 1
        }
        writtenUnsynced = false
    }

    /// Extends the current segment with written zeros to at least `end`, a preallocation step at a time.
    private func preallocate(through end: Int) throws {
        let target = (end / preallocationBytes + 1) * preallocationBytes
        let zeros = [UInt8](repeating: 0, count: min(target - filledSize, 1 << 20))
        while filledSize < target {
            let n = min(zeros.count, target - filledSize)
            try zeros.withUnsafeBytes { try FileIO.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[..<n]), at: filledSize, path: currentPath) }
            filledSize += n
        }
    }

    /// Cuts the current segment back to its records, syncs and closes it.
    private func closeSegment() throws {
        guard fd >= 0 else { return }
        if filledSize > currentSize {
            guard ftruncate(fd, off_t(currentSize)) == 0 else { throw FileIO.errno("cannot truncate", currentPath) }
            filledSize = currentSize
        }
        if syncMode == .always { try FileIO.fdatasync(fd, path: currentPath) }
        writtenUnsynced = false
        close(fd)
        fd = -1
    }

    /// Starts a segment for records from index `first` on. Its name is `first`, or one above the
    /// newest segment's when that is not below it (a segment of a hard state alone, or entries that
    /// replace a conflicting suffix): names grow in the order segments are written, so recovery
    /// reads them in that order and no start ever meets an existing file. Every entry of a segment
    /// is below the next segment's name, or replaced by that segment's entries, which is what
    /// `compact(upTo:)` relies on.
    private func startSegment(first: LogIndex) throws {
        try closeSegment()
        let name = max(first.rawValue, (segments.last?.first.rawValue ?? 0) + 1)
        let path = "\(directory)/wal-\(String(name, radix: 16).leftPadded(16)).log"
        fd = try FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL)
        currentPath = path
        // Every segment opens with the newest hard state, so compacting older segments away never
        // loses a term or a vote.
        var head = Self.segmentMagic
        if let latestHardState { Self.appendRecord(Self.hardStateRecord(latestHardState), to: &head) }
        filledSize = 0
        try preallocate(through: head.count)
        try head.withUnsafeBytes { try FileIO.writeAll(fd, $0, at: 0, path: path) }
        if syncMode == .always {
            try FileIO.fdatasync(fd, path: path)
            try FileIO.syncDirectory(directory)
        }
        currentSize = head.count
        segments.append((LogIndex(name), path))
    }

    /// Deletes segments that hold only entries at or below `index` (a snapshot covers them).
    public func compact(upTo index: LogIndex) throws {
        // Segment i holds entries from its first index up to the next segment's first index.
        var removed = false
        while segments.count > 1, segments[1].first.rawValue <= index.rawValue {
            try FileIO.remove(segments[0].path)
            segments.removeFirst()
            removed = true
        }
        if removed { try FileIO.syncDirectory(directory) }
    }

    /// Closes the current segment so the next commit starts a new one.
    public func rotate() throws {
        try closeSegment()
    }

    public var segmentPaths: [String] { segments.map(\.path) }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
