#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open descriptors (`RLIMIT_NOFILE`), which bounds the connections a node
/// can take.
enum FileDescriptorLimit {
    /// Raises the soft limit to the hard one (as nginx and etcd do), and returns the soft limit now.
    static func raise() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// The connections a node takes when `maxConnections` is 0: the descriptors it may open less 64
    /// (log segments, snapshots, peers, listeners), at least 64 and at most 65,536.
    static func connections(configured: Int) -> Int {
        if configured > 0 { return configured }
        return min(65_536, max(64, raise() - 64))
    }
}
