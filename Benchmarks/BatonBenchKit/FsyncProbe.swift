import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// How many `write` + `fdatasync` pairs of one small record a second this disk does from one writer:
/// the ceiling of a log that syncs every write, and the yardstick for group commit.
public enum FsyncProbe {
    /// How the probe's file grows.
    public enum Pattern: String, Sendable, CaseIterable {
        /// Each record extends the file: every sync also commits a new file size (on ext4, a journal commit).
        case append
        /// Records overwrite a file filled with zeros beforehand, as Baton's log segments are: a sync
        /// flushes data only. The faster of the two on ext4, so the stricter yardstick.
        case preallocated
    }

    /// What one pattern measured.
    public struct Result: Sendable {
        public var syncsPerSecond: Double
        /// How long the probe ran, in seconds: at least the time asked for, longer by the last pair.
        public var elapsed: Double
        /// Each `write` + `fdatasync` pair, in microseconds: a disk's stalls show in its tail, and a
        /// group commit waits for every one of them.
        public var latency: Histogram<UInt64>
    }

    public static func run(
        directory: String, seconds: Double = 3, recordSize: Int = 128, pattern: Pattern = .preallocated
    ) throws -> Result {
        let path = "\(directory)/baton-fsync-probe.\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DialectError("cannot create \(path)") }
        defer {
            close(fd)
            unlink(path)
        }
        // Room for 3 s at 30,000 syncs/s; the offset wraps around if a disk is faster still.
        let fileSize = 12 << 20
        if pattern == .preallocated {
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            for offset in stride(from: 0, to: fileSize, by: zeros.count) {
                let n = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                guard n == zeros.count else { throw DialectError("cannot fill \(path)") }
            }
            guard fsync(fd) == 0 else { throw DialectError("cannot fsync \(path)") }
        }
        let record = [UInt8](repeating: 0x42, count: recordSize)
        var ts = timespec()
        func now() -> Double {
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let start = now()
        var count = 0
        var offset = 0
        var last = start
        while last - start < seconds {
            if pattern == .preallocated && offset + recordSize > fileSize { offset = 0 }
            let written = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard written == recordSize, fdatasync(fd) == 0 else { throw DialectError("write or fdatasync failed on \(path)") }
            let done = now()
            _ = latency.record(min(max(UInt64((done - last) * 1e6), 1), latency.highestTrackableValue))
            last = done
            offset += recordSize
            count += 1
        }
        return Result(syncsPerSecond: Double(count) / (last - start), elapsed: last - start, latency: latency)
    }
}
