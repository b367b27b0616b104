import BatonProtocol
import NIOConcurrencyHelpers

/// What a lock guards, as the protocol asks users to build it: it remembers the largest fencing
/// token it has accepted per key and refuses a write carrying a smaller one (PROTOCOL.md, "Fencing
/// tokens"). The fault suite's holders write to it; a holder stopped past its lease writes late.
final class FencedResource: Sendable {
    struct Stale: Error, CustomStringConvertible {
        var token: FencingToken
        var newest: FencingToken
        var description: String { "stale token \(token): \(newest) was accepted before" }
    }

    private let newest = NIOLockedValueBox([String: FencingToken]())

    func write(_ key: String, token: FencingToken) throws {
        try newest.withLockedValue { newest in
            if let n = newest[key], token < n { throw Stale(token: token, newest: n) }
            newest[key] = max(token, newest[key] ?? token)
        }
    }
}
