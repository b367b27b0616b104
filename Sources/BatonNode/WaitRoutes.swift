/// Who waits for the answer to one waiting command (an acquire or a claim in line): the request
/// that asked, and every retry of it (same client, same sequence) that came while it waited, on
/// this connection or another. Each gets the answer when the wait is settled, so every request is
/// answered exactly once (PROTOCOL.md §1); a route whose connection closed meanwhile is skipped by
/// the shell.
struct WaitRoutes: Sendable {
    private var first: RouteID
    /// Empty, and so without an allocation, unless a retry came while the command waited.
    private var retries: [RouteID] = []

    init(_ route: RouteID) { first = route }

    mutating func add(_ route: RouteID) { retries.append(route) }

    /// Calls `body` with every route, the first request's first (without building an array: this
    /// runs for every settled wait).
    func forEach(_ body: (RouteID) -> Void) {
        body(first)
        for route in retries { body(route) }
    }
}
