import Foundation

/// Runs `body` on a thread of its own, off Swift's cooperative pool (as many threads as cores, two
/// here): a test blocked there on a child process could starve the tests running beside it.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs a program to its end and returns its exit status and everything it printed (standard output
/// and error together, one pipe: reading one while the program blocks writing the other would
/// hang); with `environment` added to this process's, and in `directory` if one is named. Blocks:
/// call it from `offPool` in async code, or use `run`.
public func runTool(
    _ tool: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil
) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    p.currentDirectoryURL = directory
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

/// Runs a system tool from /usr/bin (curl, nghttp, h2load, openssl) off the pool; returns its status
/// and its output (standard output and error together).
public func run(_ tool: String, _ arguments: [String]) async throws -> (status: Int32, out: String) {
    let r = try await offPool { try runTool("/usr/bin/\(tool)", arguments) }
    return (r.status, r.output)
}

/// Runs the `batonctl` executable (built next to the tests, run without privileges) and captures what it prints.
public func batonctl(_ arguments: [String], port: Int) async throws -> (status: Int32, out: String, err: String) {
    try await built("batonctl", arguments, environment: ["BATON_ENDPOINTS": "127.0.0.1:\(port)"])
}

/// Runs one of this package's executables (`baton`, `batonctl`, `baton-bench`) without privileges
/// and captures what it prints.
public func built(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:]
) async throws -> (status: Int32, out: String, err: String) {
    try await offPool { try builtNow(executable, arguments, environment: environment) }
}

private func builtNow(
    _ executable: String, _ arguments: [String], environment: [String: String]
) throws -> (status: Int32, out: String, err: String) {
    let process = try Unprivileged.process(executable, arguments)
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// `text` parsed as JSON (what batonctl `--json` and baton-bench print).
public func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}
