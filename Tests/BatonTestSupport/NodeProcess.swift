import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where a node process's output (standard output and error together) goes.
public enum NodeOutput {
    /// Nowhere: a test that reads nothing of it.
    case discarded
    /// Appended to a file (made if missing), so one log covers all of a node's runs.
    case appended(toFile: String)
    /// Into a pipe the test reads (a node that is expected to exit).
    case pipe(Pipe)
}

/// The one launcher of `baton` processes in the tests: `baton <arguments>` as it is deployed, as
/// the unprivileged user (`Unprivileged`; or `user`, with its groups), inside `namespace` if one is
/// named, with its output where `output` says; with `descriptorLimit`, under that RLIMIT_NOFILE
/// (soft and hard, through prlimit); with `build`, that `baton` (an older build) instead of this
/// one's; with `environment` added to the test's own. Returns the running process; the test stops
/// it (SIGTERM or SIGKILL, then `waitUntilExit`).
public func launchNode(
    _ arguments: [String], output: NodeOutput = .discarded, user: (uid: uid_t, gid: gid_t)? = nil, namespace: String? = nil,
    descriptorLimit: Int? = nil, build: String? = nil, environment: [String: String] = [:]
) throws -> Process {
    let process = try Unprivileged.process("baton", arguments, user: user, namespace: namespace, path: build)
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let descriptorLimit, let executable = process.executableURL {
        precondition(namespace == nil, "a descriptor limit inside a namespace is not needed yet")
        process.arguments = ["--nofile=\(descriptorLimit):\(descriptorLimit)", "--", executable.path] + (process.arguments ?? [])
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
    }
    switch output {
    case .discarded:
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    case .appended(let path):
        try process.run(appendingOutputTo: path)
    case .pipe(let pipe):
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
    }
    return process
}

/// Waits until `process` accepts connections on 127.0.0.1:`port`; a process that exits first is a
/// recorded failure at once (not after the timeout).
public func waitUntilListening(
    _ process: Process, port: Int, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    try await eventually("the node listens on port \(port)", every: .milliseconds(10), sourceLocation: sourceLocation) {
        try #require(process.isRunning, "the node exited (status \(process.terminationStatus)) before it listened", sourceLocation: sourceLocation)
        guard let fd = try? rawConnect(port: port) else { return false }
        close(fd)
        return true
    }
}

/// Waits for `process` to exit and returns its status; one that does not is killed and recorded.
public func waitForExit(
    _ process: Process, timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation
) async throws -> Int32 {
    do {
        try await eventually("baton exits", timeout: timeout, every: .milliseconds(20), sourceLocation: sourceLocation) { !process.isRunning }
    } catch is EventuallyTimedOut {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return -1
    }
    return process.terminationStatus
}
