import Foundation
import Testing

/// The Python client's pytest suite (Clients/python/tests), run from the one test command so CI and
/// a newcomer run it too. It starts its own `baton` nodes, as `nobody` when run as root.
@Suite(.heavy, .timeLimit(.minutes(5))) struct PythonClientTests {
    @Test func thePythonClientsSuitePasses() async throws {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let baton = try batonExecutable().path
        let result = try await offPool { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "Clients/python/tests"]
            process.currentDirectoryURL = package
            var environment = ProcessInfo.processInfo.environment
            environment["BATON_BIN"] = baton
            environment["PYTHONDONTWRITEBYTECODE"] = "1"
            environment["PYTHONPATH"] = package.appendingPathComponent("Clients/python").path
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(result.0 == 0, "pytest failed:\n\(result.1)")
        #expect(result.1.contains(" passed"), "\(result.1)")
    }
}
