import Foundation

/// Runs a program to its end and returns its exit status and everything it printed (standard output
/// and error together). Blocks: call it from `offPool` in async code that must not hold a thread of
/// the cooperative pool.
func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}
