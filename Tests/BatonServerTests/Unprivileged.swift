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
enum Unprivileged {
    /// `nobody` on Debian.
    static let user: (uid: uid_t, gid: gid_t) = (65534, 65534)
    static var isRoot: Bool { geteuid() == 0 }

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
    static func executable(_ name: String) throws -> String {
        isRoot ? try copies.get().appendingPathComponent(name).path : try batonExecutable().deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// A process that runs one of the package's executables (`baton`, `batonctl`, `baton-bench`)
    /// without privileges; the caller sets its output and runs it.
    static func process(_ executable: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        guard isRoot else {
            process.executableURL = try batonExecutable().deletingLastPathComponent().appendingPathComponent(executable)
            process.arguments = arguments
            return process
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--inh-caps=-all", "--",
            try copies.get().appendingPathComponent(executable).path,
        ] + arguments
        return process
    }

    /// Creates `path` (and its parents) and hands it to the user the executables run as.
    static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if isRoot { chown(path, user.uid, user.gid) }
    }

    /// Hands a file the test wrote (a configuration) to the user the executables run as.
    static func handOver(_ path: String) {
        if isRoot { chown(path, user.uid, user.gid) }
    }
}

@Suite(.timeLimit(.minutes(1))) struct UnprivilegedTests {
    /// A node, batonctl and the client library inside it, all without privileges: a socket option
    /// that needs one (SO_DEBUG, which `.socketOption(.tcp_nodelay)` sets) resets every connection.
    @Test func aNodeAndBatonctlWorkWithoutPrivileges() async throws {
        if Unprivileged.isRoot {
            let probe = try Unprivileged.process("baton", ["--help"])
            #expect(probe.executableURL?.path == "/usr/bin/setpriv", "the node must not run as root")
        }
        let port = try await freePort()
        let node = try Unprivileged.process("baton", ["dev", "--port", "\(port)", "--no-metrics", "--log-level", "error"])
        let log = Pipe()
        node.standardOutput = log
        node.standardError = log
        try node.run()
        defer {
            kill(node.processIdentifier, SIGKILL)
            node.waitUntilExit()
        }
        // The node is up once its port accepts; batonctl then must get its answers.
        var accepting = false
        for _ in 0..<500 where !accepting {
            if let fd = try? rawConnect(port: port) {
                close(fd)
                accepting = true
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        #expect(accepting, "the node never listened")
        let status = try await batonctl(["status"], port: port)
        #expect(status.status == 0, "batonctl status: \(status.err)")
        #expect(status.out.contains("standalone"))
        let add = try await batonctl(["jobs", "add", "--type", "thumbnail"], port: port)
        #expect(add.status == 0, "batonctl jobs add: \(add.err)")
        let list = try await batonctl(["jobs", "list"], port: port)
        #expect(list.status == 0 && list.out.contains("thumbnail"), "batonctl jobs list: \(list.out) \(list.err)")
        // baton-bench opens its own connections (BatonBenchKit).
        let bench = try await built(
            "baton-bench", ["load", "--endpoint", "127.0.0.1:\(port)", "--connections", "2", "--duration", "0.3", "--warmup", "0.1", "--json"])
        let report = (try? json(bench.out)) as? [String: Any]
        #expect(bench.status == 0 && report?["errors"] as? Int == 0 && (report?["cycles"] as? Int ?? 0) > 0, "baton-bench: \(bench.out) \(bench.err)")
    }
}

extension Process {
    /// Runs the process with its output and errors appended to the file at `path` (made if missing),
    /// so a node's log covers all its runs.
    func run(appendingOutputTo path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try log.seekToEnd()
        standardOutput = log
        standardError = log
        try run()
        try log.close()
    }
}
