import BatonProtocol

/// A promise a history broke, and where.
struct Violation: Sendable, CustomStringConvertible {
    var checker: String
    var message: String
    var description: String { "\(checker): \(message)" }
}

/// The checkers of a recorded history. Each reads only what the clients saw, on the test machine's
/// clock, and reports only what is surely wrong: an operation whose answer never came may or may
/// not have taken effect, and the checkers assume whichever is kinder.
enum Checkers {
    /// One holder's tenure of a lock: from its grant until it stopped counting on it.
    struct Tenure {
        var key: String
        var process: Int
        var token: FencingToken
        var ttl: Milliseconds
        /// When the grant's answer arrived (µs).
        var granted: Int64
        /// When the holder's count ran out, or it sent its release (µs).
        var end: Int64
    }

    /// How a holder counts: `lease_left` from its request's send (the protocol's rule), less a
    /// margin; the client library stops a tenth of the TTL early.
    enum Count {
        case protocolRule
        case clientLibrary

        func margin(_ ttl: Milliseconds) -> Int64 {
            switch self {
            case .protocolRule: 0
            case .clientLibrary: Int64(ttl.rawValue) * 100  // a tenth, in µs
            }
        }
    }

    static func tenures(_ history: History, count: Count) -> [Tenure] {
        var byToken: [FencingToken: Tenure] = [:]
        for op in history.operations {
            switch (op.call, op.outcome) {
            case (.acquire(let key, let ttl, _), .lease(let token, _, _, _)):
                guard let complete = op.complete, let end = op.countedEnd else { continue }
                byToken[token] = Tenure(
                    key: key, process: op.process, token: token, ttl: ttl, granted: complete, end: end - count.margin(ttl))
            case (.renew(_, let token, let ttl), .lease):
                guard let end = op.countedEnd, var tenure = byToken[token] else { continue }
                tenure.end = max(tenure.end, end - count.margin(ttl))
                byToken[token] = tenure
            default:
                continue
            }
        }
        // A release ends the tenure when it is sent, whatever its answer.
        for op in history.operations {
            if case .release(_, let token) = op.call, var t = byToken[token] {
                t.end = min(t.end, op.invoke)
                byToken[token] = t
            }
        }
        return Array(byToken.values)
    }

    /// Mutual exclusion against the holders' own counts: no holder is told of a grant while an
    /// earlier holder of the same lock still counts its lease and has not released it.
    static func mutualExclusion(_ history: History, count: Count = .protocolRule) -> [Violation] {
        var violations: [Violation] = []
        let byKey = Dictionary(grouping: tenures(history, count: count), by: \.key)
        for (key, tenures) in byKey {
            let ordered = tenures.sorted { $0.token < $1.token }
            for (i, later) in ordered.enumerated() {
                for earlier in ordered[..<i] where later.granted < earlier.end {
                    violations.append(Violation(
                        checker: "mutual exclusion (\(count))",
                        message: "'\(key)': process \(later.process) was granted token \(later.token) "
                            + "\((earlier.end - later.granted) / 1000) ms before process \(earlier.process)'s "
                            + "lease with token \(earlier.token) ended as it counted"))
                }
            }
        }
        return violations
    }

    /// Fencing: every grant and claim has a token of its own, and one that completed before another
    /// was sent has the smaller token.
    static func fencing(_ history: History) -> [Violation] {
        var violations: [Violation] = []
        let grants = history.operations.filter { op in
            switch op.call {
            case .acquire, .claim: op.token != nil
            default: false
            }
        }
        var seen: [FencingToken: Int] = [:]
        for (i, op) in grants.enumerated() {
            let token = op.token!
            if let j = seen[token] {
                violations.append(Violation(
                    checker: "fencing", message: "token \(token) was handed out twice: \(grants[j].call) and \(op.call)"))
            }
            seen[token] = i
        }
        let byInvoke = grants.sorted { $0.invoke < $1.invoke }
        let byComplete = grants.sorted { ($0.complete ?? .max) < ($1.complete ?? .max) }
        // For each grant, the largest token among the grants completed before it was sent.
        var k = 0
        var largest: (token: FencingToken, op: History.Operation)?
        for op in byInvoke {
            while k < byComplete.count, let c = byComplete[k].complete, c < op.invoke {
                if largest == nil || byComplete[k].token! > largest!.token { largest = (byComplete[k].token!, byComplete[k]) }
                k += 1
            }
            if let largest, op.token! <= largest.token {
                violations.append(Violation(
                    checker: "fencing",
                    message: "token \(op.token!) (\(op.call)) was sent after token \(largest.token) (\(largest.op.call)) completed"))
            }
        }
        return violations
    }

    /// Jobs: no acknowledged add lost (`present` says whether the final state has the job), no job
    /// completed under two claims, and no completion acknowledged after its claim surely ended
    /// (the job had been claimed again before the completion was sent).
    static func jobs(_ history: History, present: (JobID) -> Bool) -> [Violation] {
        var violations: [Violation] = []
        for op in history.operations {
            if case .added(let id) = op.outcome, !present(id) {
                violations.append(Violation(checker: "jobs", message: "job \(id) was added (acknowledged) and is gone"))
            }
        }
        var completedBy: [JobID: FencingToken] = [:]
        var claims: [JobID: [(token: FencingToken, complete: Int64)]] = [:]
        for op in history.operations {
            if case .claim = op.call, case .lease(let token, _, _, let job?) = op.outcome, let complete = op.complete {
                claims[job, default: []].append((token, complete))
            }
        }
        for op in history.operations {
            guard case .complete(let id, let token) = op.call, op.outcome == .done else { continue }
            if let other = completedBy[id], other != token {
                violations.append(Violation(checker: "jobs", message: "job \(id) was completed under tokens \(other) and \(token)"))
            }
            completedBy[id] = token
            if let later = claims[id]?.first(where: { $0.token > token && $0.complete < op.invoke }) {
                violations.append(Violation(
                    checker: "jobs",
                    message: "job \(id): a completion with token \(token) was acknowledged after token \(later.token) claimed the job"))
            }
        }
        return violations
    }

    /// The cluster's clock never advances faster than real time between two answers: for lease
    /// answers i and j with j sent no earlier than i, the node's time at j's answer less that at
    /// i's is at most the real time from i's request to j's answer. Each jump is reported once: the
    /// answers after it are compared from it on.
    static func clusterClock(_ history: History) -> [Violation] {
        let answers = history.operations
            .compactMap { op -> (op: History.Operation, time: Int64, complete: Int64)? in
                guard let t = op.clusterTimeAtAnswer, let c = op.complete else { return nil }
                return (op, Int64(t) * 1000, c)
            }
            .sorted { $0.op.invoke < $1.op.invoke }
        var violations: [Violation] = []
        // c_j − c_i ≤ complete_j − invoke_i  ⟺  c_j − complete_j ≤ c_i − invoke_i: keep the least right side.
        var least: (value: Int64, op: History.Operation)?
        for a in answers {
            let own = a.time - a.op.invoke
            if let earlier = least, a.time - a.complete > earlier.value {
                violations.append(Violation(
                    checker: "cluster clock",
                    message: "the cluster's time gained \((a.time - a.complete - earlier.value) / 1000) ms on real time "
                        + "between the answers to \(earlier.op.call) and \(a.op.call)"))
                least = (own, a.op)
            } else if least == nil || own < least!.value {
                least = (own, a.op)
            }
        }
        return violations
    }

    /// The fenced resource: a holder's write inside its own count of its lease is accepted (were it
    /// refused, a later token was accepted while the lease ran), and no write is accepted after one
    /// with a larger token was (the resource's own rule, which the paused holders' late writes test).
    static func fencedWrites(_ history: History) -> [Violation] {
        var violations: [Violation] = []
        let tenures = Dictionary(tenures(history, count: .protocolRule).map { ($0.token, $0) }, uniquingKeysWith: { a, _ in a })
        var accepted: [String: [(token: FencingToken, complete: Int64)]] = [:]
        for op in history.operations {
            guard case .write(let key, let token, _) = op.call, let complete = op.complete else { continue }
            if op.outcome == .done {
                accepted[key, default: []].append((token, complete))
            } else if let tenure = tenures[token], complete < tenure.end {
                violations.append(Violation(
                    checker: "fenced resource",
                    message: "'\(key)': process \(op.process)'s write with token \(token) was refused "
                        + "\((tenure.end - complete) / 1000) ms before its lease ended as it counted"))
            }
        }
        for op in history.operations {
            guard case .write(let key, let token, _) = op.call, op.outcome == .done,
                let newer = accepted[key]?.first(where: { $0.token > token && $0.complete < op.invoke })
            else { continue }
            violations.append(Violation(
                checker: "fenced resource",
                message: "'\(key)': a write with token \(token) was accepted after one with token \(newer.token)"))
        }
        return violations
    }
}
