import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Baton's executables run in the tests as they are deployed: as a user without privileges. A test
/// run as root (CI) starts them through `setpriv` as `nobody`, from a copy of the executables in a
/// directory every user may read (the build folder may sit under one that `nobody` cannot enter);
/// a test run as an ordinary user starts them as that user. So a call that needs a privilege (a
/// socket option such as SO_DEBUG, a port below 1024) fails here as it would in production.
public enum Unprivileged {
    /// `nobody` on Debian.
    public static let user: (uid: uid_t, gid: gid_t) = (65534, 65534)
    public static var isRoot: Bool { geteuid() == 0 }

    /// The copies, made once per test process and removed when it exits.
    private static let copies: Result<URL, any Error> = Result {
        let source = try batonExecutable().deletingLastPathComponent()
        let dir = URL(fileURLWithPath: "/tmp/baton-tests-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["baton", "batonctl", "baton-bench"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
            chmod(dir.appendingPathComponent(name).path, 0o755)
        }
        chmod(dir.path, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: "/tmp/baton-tests-\(getpid())") }
        return dir
    }

    /// The copy of one of the package's executables that every user may run.
    public static func executable(_ name: String) throws -> String {
        isRoot ? try copies.get().appendingPathComponent(name).path : try batonExecutable().deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// A process that runs one of the package's executables (`baton`, `batonctl`, `baton-bench`)
    /// without privileges, as `nobody` or, given `user`, as that user with its groups (a systemd
    /// unit's User=); inside network namespace `namespace` when one is named (the fault suite's
    /// hosts); `path` runs another build of it instead (one every user may run). The caller sets
    /// its output and runs it.
    public static func process(
        _ executable: String, _ arguments: [String], user named: (uid: uid_t, gid: gid_t)? = nil, namespace: String? = nil,
        path: String? = nil
    ) throws -> Process {
        var command: [String]
        if isRoot {
            let (uid, gid) = named ?? user
            command = [
                "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", named == nil ? "--clear-groups" : "--init-groups",
                "--inh-caps=-all", "--", try path ?? copies.get().appendingPathComponent(executable).path,
            ]
        } else {
            command = [try path ?? batonExecutable().deletingLastPathComponent().appendingPathComponent(executable).path]
        }
        if let namespace { command = ["/usr/sbin/ip", "netns", "exec", namespace] + command }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + arguments
        return process
    }

    /// Creates `path` (and its parents) and hands it to the user the executables run as.
    public static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if isRoot { chown(path, user.uid, user.gid) }
    }

    /// Hands a file the test wrote (a configuration) to the user the executables run as.
    public static func handOver(_ path: String) {
        if isRoot { chown(path, user.uid, user.gid) }
    }
}

extension Process {
    /// Runs the process with its output and errors appended to the file at `path` (made if missing),
    /// so a node's log covers all its runs.
    public func run(appendingOutputTo path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try log.seekToEnd()
        standardOutput = log
        standardError = log
        try run()
        try log.close()
    }
}

/// The `baton` executable next to the test bundle (SwiftPM builds it with the tests).
public func batonExecutable() throws -> URL {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("baton")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw MissingExecutable("the baton executable is not built next to \(dir.path); run `swift build` first")
}

/// The package's executables are not built where the tests look.
public struct MissingExecutable: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
