#if canImport(Glibc)
import Glibc
#endif

/// How many `write` + `fdatasync` pairs of one small record a second this disk does from one writer:
/// the ceiling of a log that syncs every write, and the yardstick for group commit.
public enum FsyncProbe {
    public static func run(directory: String, seconds: Double = 3, recordSize: Int = 128) throws -> Double {
        let path = "\(directory)/baton-fsync-probe.\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        guard fd >= 0 else { throw DialectError("cannot create \(path)") }
        defer {
            close(fd)
            unlink(path)
        }
        let record = [UInt8](repeating: 0x42, count: recordSize)
        var ts = timespec()
        func now() -> Double {
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        let start = now()
        var count = 0
        while now() - start < seconds {
            let written = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == recordSize, fdatasync(fd) == 0 else { throw DialectError("write or fdatasync failed on \(path)") }
            count += 1
        }
        return Double(count) / (now() - start)
    }
}
