#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over POSIX file calls that throw a `StorageError` naming the file.
enum FileIO {
    static func errno(_ what: String, _ path: String) -> StorageError {
        StorageError(.io, "\(what) \(path): \(String(cString: strerror(Glibc.errno)))")
    }

    /// Files the node writes are for its own user only (the log holds every payload).
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw errno("cannot open", path) }
        return fd
    }

    /// Writes all of `bytes` at `offset` (the file position is not used).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw errno("cannot write", path)
            }
            done += n
        }
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw errno("cannot stat", path) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < buf.count {
                let n = read(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    throw errno("cannot read", path)
                }
                if n == 0 { break }
                done += n
            }
        }
        out.removeSubrange(done...)
        return out
    }

    static func fsync(_ fd: Int32, path: String) throws {
        guard Glibc.fsync(fd) == 0 else { throw errno("cannot fsync", path) }
    }

    static func fdatasync(_ fd: Int32, path: String) throws {
        guard Glibc.fdatasync(fd) == 0 else { throw errno("cannot fdatasync", path) }
    }

    /// Makes a rename or a new file in `directory` durable.
    static func syncDirectory(_ directory: String) throws {
        let fd = try open(directory, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: directory)
    }

    static func truncate(_ path: String, to size: Int) throws {
        guard Glibc.truncate(path, off_t(size)) == 0 else { throw errno("cannot truncate", path) }
    }

    static func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw errno("cannot list", directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates `path` and any missing parents, for the node's user only (0700, whatever the umask).
    static func makeDirectory(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && Glibc.errno != EEXIST { throw errno("cannot create", current) }
        }
    }

    static func remove(_ path: String) throws {
        guard unlink(path) == 0 || Glibc.errno == ENOENT else { throw errno("cannot remove", path) }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw errno("cannot rename \(from) to", to) }
    }

    static func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}
