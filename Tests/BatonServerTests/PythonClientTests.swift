import BatonTestSupport
import Foundation
import Testing

/// The Python client's pytest suite (Clients/python/tests), run from the one test command so CI and
/// a newcomer run it too. It starts its own `baton` nodes, as `nobody` when run as root.
@Suite(.heavy, .timeLimit(.minutes(5))) struct PythonClientTests {
    @Test func thePythonClientsSuitePasses() async throws {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let baton = try batonExecutable().path
        let environment = [
            "BATON_BIN": baton, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": package.appendingPathComponent("Clients/python").path,
        ]
        let result = try await offPool {
            try runTool("/usr/bin/env", ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "Clients/python/tests"], environment: environment, directory: package)
        }
        #expect(result.0 == 0, "pytest failed:\n\(result.1)")
        #expect(result.1.contains(" passed"), "\(result.1)")
    }
}
