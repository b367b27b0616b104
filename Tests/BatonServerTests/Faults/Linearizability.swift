import BatonProtocol

/// Linearizable reads: a search in the manner of Wing and Gong, with Lowe's memoisation (as
/// Porcupine does it), for an order of each lock's operations that respects real time and a model
/// of one lock. A read must answer from some moment between its send and its answer.
///
/// The model of a key is the newest token granted and whether its holder still holds it:
/// - a grant of `t` needs `t` above every earlier token, and the lock free (or its lease possibly over);
/// - a release with an answer frees it; one without may or may not have;
/// - a try-acquire told "busy" needs the lock held;
/// - a read sees the holder's token, or nothing when it is free;
/// - a lease may end on its own, but not before its holder's own count (`lease_left` from the send
///   of its acquire or of a renew answered before) has run out by the end of the operation.
///
/// An acquire with no answer may have been granted: it may take any token a read saw and no known
/// grant explains. Renewals only lengthen the count; waiting acquires told "busy", refused and
/// unanswered reads say nothing and are left out.
enum Linearizability {
    /// One operation of a key, as the search sees it.
    struct Op {
        enum Kind {
            case grant(FencingToken)
            /// No answer: granted one of these tokens, or never took effect.
            case maybeGrant([FencingToken])
            case release(FencingToken)
            case busy
            case read(FencingToken?)
        }

        var kind: Kind
        var invoke: Int64
        /// `.max` for an operation that may take effect at any time after its send, or never.
        var complete: Int64
        var index: Int
        var required: Bool { complete != .max }
    }

    /// How a holder counts a lease: from its grant, lengthened by each renewal once answered (µs).
    struct Count {
        var grant: Int64
        var renewals: [(answered: Int64, end: Int64)] = []

        /// The end as counted by someone who sent a request at `sent`: renewals answered later
        /// may not have happened yet.
        func end(before sent: Int64) -> Int64 {
            renewals.filter { $0.answered < sent }.map(\.end).reduce(grant, max)
        }
    }

    struct Model: Hashable {
        var token: FencingToken = FencingToken(0)
        var held = false
    }

    /// A point of the search: ops before `prefix` and those in `extra` are placed.
    struct Point: Hashable {
        var prefix: Int
        var extra: [Int]
        var model: Model
    }

    enum Result: Equatable {
        case linearizable
        /// No order exists; the op is the first one no order could place.
        case violation(String)
        /// The search gave up after visiting `limit` points.
        case undecided(Int)
    }

    static func check(_ history: History, limit: Int = 2_000_000) -> [Violation] {
        var keys: Set<String> = []
        for op in history.operations {
            switch op.call {
            case .acquire(let key, _, _), .release(let key, _), .read(let key): keys.insert(key)
            default: continue
            }
        }
        return keys.sorted().compactMap { key in
            switch check(history, key: key, limit: limit) {
            case .linearizable: nil
            case .violation(let message): Violation(checker: "linearizable reads", message: "'\(key)': \(message)")
            case .undecided(let n): Violation(checker: "linearizable reads", message: "'\(key)': undecided after \(n) points")
            }
        }
    }

    static func check(_ history: History, key: String, limit: Int = 2_000_000) -> Result {
        let (ops, ends) = operations(of: key, in: history)
        var visited: Set<Point> = []
        var stack = [normalized(Point(prefix: 0, extra: [], model: Model()), ops)]
        var deepest = 0
        while let point = stack.popLast() {
            if isComplete(point, ops) { return .linearizable }
            deepest = max(deepest, point.prefix)
            for next in successors(of: point, ops, ends) where visited.insert(next).inserted {
                stack.append(next)
            }
            if visited.count > limit { return .undecided(limit) }
        }
        let stuck = ops[min(deepest, ops.count - 1)]
        // What the key saw around it: the operations sent in the 4 s before it and answered after
        // the one before it, so a failure can be read without the whole history.
        let context = ops.filter { $0.invoke >= stuck.invoke - 4_000_000 && $0.invoke <= stuck.invoke + 500_000 }
            .map { "  \($0.invoke / 1000)–\($0.complete == .max ? "?" : "\($0.complete / 1000)") ms: \(describe($0, history))" }
        return .violation(
            "no order of its operations explains \(describe(stuck, history)) (sent at \(stuck.invoke / 1000) ms): "
                + "it contradicts what was answered before\n" + context.joined(separator: "\n"))
    }

    private static func describe(_ op: Op, _ history: History) -> String {
        let h = history.operations[op.index]
        return "process \(h.process)'s \(h.call) → \(h.outcome)"
    }

    /// The key's operations in order of their send, and each token's tenure as its holder counted
    /// it: the grant's count and the counts of the renewals answered, with when each was answered.
    static func operations(of key: String, in history: History) -> (ops: [Op], ends: [FencingToken: Count]) {
        var ops: [Op] = []
        var ends: [FencingToken: Count] = [:]
        var granted: Set<FencingToken> = []
        var seen: Set<FencingToken> = []
        var unanswered: [Int] = []
        for (i, h) in history.operations.enumerated() {
            switch (h.call, h.outcome) {
            case (.acquire(key, _, _), .lease(let token, _, _, _)):
                ops.append(Op(kind: .grant(token), invoke: h.invoke, complete: h.complete ?? .max, index: i))
                granted.insert(token)
                if let end = h.countedEnd { ends[token] = Count(grant: end, renewals: ends[token]?.renewals ?? []) }
            case (.acquire(key, _, let wait), .none) where wait == 0:
                ops.append(Op(kind: .busy, invoke: h.invoke, complete: h.complete ?? .max, index: i))
            case (.acquire(key, _, _), .unknown):
                unanswered.append(i)
            case (.renew(key, let token, _), .lease):
                if let end = h.countedEnd, let c = h.complete { ends[token, default: Count(grant: .min)].renewals.append((c, end)) }
            case (.release(key, let token), .done):
                ops.append(Op(kind: .release(token), invoke: h.invoke, complete: h.complete ?? .max, index: i))
            case (.release(key, let token), .unknown):
                ops.append(Op(kind: .release(token), invoke: h.invoke, complete: .max, index: i))
            case (.read(key), .read(let token)):
                ops.append(Op(kind: .read(token), invoke: h.invoke, complete: h.complete ?? .max, index: i))
                if let token { seen.insert(token) }
            default:
                continue
            }
        }
        // An unanswered acquire matters only if a read saw a token no answered grant explains.
        let unexplained = seen.subtracting(granted).sorted()
        if !unexplained.isEmpty {
            for i in unanswered {
                let h = history.operations[i]
                ops.append(Op(kind: .maybeGrant(unexplained), invoke: h.invoke, complete: .max, index: i))
            }
        }
        ops.sort { ($0.invoke, $0.index) < ($1.invoke, $1.index) }
        return (ops, ends)
    }

    /// May the lease of `token` have ended by the time `op` took effect, as its holder counts?
    private static func mayHaveEnded(
        _ token: FencingToken, by op: Op, _ ends: [FencingToken: Count]
    ) -> Bool {
        guard let count = ends[token] else { return true }  // never answered: nobody counts on it
        return op.complete > count.end(before: op.invoke)
    }

    /// Applies `op` to `model`: the models it may leave (none: it cannot take effect there).
    private static func apply(_ op: Op, to model: Model, _ ends: [FencingToken: Count]) -> [Model] {
        let free = !model.held || mayHaveEnded(model.token, by: op, ends)
        switch op.kind {
        case .grant(let token):
            return token > model.token && free ? [Model(token: token, held: true)] : []
        case .maybeGrant(let tokens):
            return free ? tokens.filter { $0 > model.token }.map { Model(token: $0, held: true) } + [model] : [model]
        case .release(let token):
            return [model.token == token ? Model(token: token, held: false) : model]
        case .busy:
            return model.held ? [model] : []
        case .read(nil):
            return free ? [Model(token: model.token, held: false)] : []
        case .read(let token?):
            return model.held && model.token == token ? [model] : []
        }
    }

    /// An op that can no longer change anything: an unanswered release or grant whose tokens are
    /// all below the newest grant (tokens only grow).
    private static func isSpent(_ op: Op, _ model: Model) -> Bool {
        switch op.kind {
        case .release(let token): !op.required && token < model.token
        case .maybeGrant(let tokens): tokens.allSatisfy { $0 <= model.token }
        default: false
        }
    }

    private static func normalized(_ point: Point, _ ops: [Op]) -> Point {
        var p = point
        var extra = Set(p.extra)
        while p.prefix < ops.count, extra.contains(p.prefix) || isSpent(ops[p.prefix], p.model) {
            extra.remove(p.prefix)
            p.prefix += 1
        }
        p.extra = extra.filter { $0 >= p.prefix }.sorted()
        return p
    }

    private static func isComplete(_ point: Point, _ ops: [Op]) -> Bool {
        (point.prefix..<ops.count).allSatisfy { !ops[$0].required || point.extra.contains($0) }
    }

    /// Every point one more op placed away: an op may go next when no unplaced op was answered
    /// before it was sent.
    private static func successors(of point: Point, _ ops: [Op], _ ends: [FencingToken: Count]) -> [Point] {
        var result: [Point] = []
        var earliestAnswer = Int64.max
        var i = point.prefix
        let placed = Set(point.extra)
        while i < ops.count, ops[i].invoke <= earliestAnswer {
            if !placed.contains(i) {
                let op = ops[i]
                earliestAnswer = min(earliestAnswer, op.complete)
                for model in apply(op, to: point.model, ends) {
                    var extra = point.extra
                    extra.append(i)
                    result.append(normalized(Point(prefix: point.prefix, extra: extra, model: model), ops))
                }
            }
            i += 1
        }
        return result
    }
}
