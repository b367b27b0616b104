import Foundation

/// A fresh path under the temporary directory for a test's data (not created: the caller makes it,
/// with `Unprivileged.makeDirectory` when a node process writes there, and removes it).
public func temporaryDataDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("baton-test-\(UUID())").path
}
