import BatonProtocol
import BatonRaft
import Testing

@testable import BatonCore

/// Listings select a page without sorting everything the state holds; paged through, they give
/// exactly what a full sort of the state gives, in order.
@Suite struct ListingTests {
    /// A state of random locks (held, expired, waited on) and jobs of several types and states.
    static func randomState(seed: UInt64) -> Harness {
        var rng = SplitMix64(seed: seed)
        var h = Harness()
        for i in 0..<300 {
            let key = "k/\(Int.random(in: 0..<400, using: &rng))"
            let client = ClientID(UInt64.random(in: 1...8, using: &rng))
            _ = h.acquire(key, client: client, ttl: Milliseconds(UInt32.random(in: 100...5_000, using: &rng)),
                          wait: Bool.random(using: &rng) ? .zero : 2_000, owner: "o\(i)")
            _ = h.run(.addJob(JobSpec(type: ["a", "b", "c"].randomElement(using: &rng)!, maxAttempts: 1)), client: client)
            if Int.random(in: 0..<3, using: &rng) == 0, let job = h.claim(["a", "b"], client: client) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: _ = h.run(.completeJob(job.id, token: job.token, result: []), client: client)
                case 1: _ = h.run(.failJob(job.id, token: job.token, error: "e"), client: client)  // dead: one attempt
                default: break  // stays running
                }
            }
            if i % 50 == 0 { h.advance(UInt64.random(in: 0...1_000, using: &rng)) }
        }
        return h
    }

    @Test(arguments: [1, 2, 3] as [UInt64]) func pagesMatchAFullSort(seed: UInt64) {
        let h = Self.randomState(seed: seed)
        let m = h.machine
        let time = h.time

        // Jobs, for every filter and a few page sizes.
        for filter in [JobFilter(), JobFilter(type: "a"), JobFilter(state: .running), JobFilter(type: "b", state: .dead)] {
            let expected = m.jobs.values.filter { job in
                (filter.type.isEmpty || job.spec.type == filter.type) && (filter.state.map { job.state == $0 } ?? true)
            }.map(\.id).sorted()
            for pageSize in [1, 7, 1000] as [UInt16] {
                var seen: [JobID] = []
                var cursor = JobID(0)
                repeat {
                    var f = filter
                    f.after = cursor
                    f.limit = pageSize
                    guard case .jobs(let page, let next) = m.query(.listJobs(f)) else { Issue.record("no jobs reply"); return }
                    #expect(page.count <= Int(pageSize))
                    #expect(next == JobID(0) || page.count == Int(pageSize))
                    seen += page.map(\.id)
                    cursor = next
                } while cursor != JobID(0)
                #expect(seen == expected, "filter \(filter), pages of \(pageSize)")
            }
        }

        // Held locks, by prefix, in key order.
        for prefix in ["", "k/1", "k/none"] {
            let expected = m.locks.filter { key, record in
                key.hasPrefix(prefix) && (record.holder.map { $0.expiresAt > time } ?? false)
            }.map(\.key).sorted()
            for pageSize in [1, 7, 1000] as [UInt16] {
                var seen: [String] = []
                while true {
                    guard case .locks(let page) = m.query(.listLocks(prefix: prefix, after: seen.last ?? "", limit: pageSize)) else {
                        Issue.record("no locks reply")
                        return
                    }
                    seen += page.map(\.key)
                    if page.count < Int(pageSize) { break }
                }
                #expect(seen == expected, "prefix \(prefix), pages of \(pageSize)")
            }
        }

        // Leases: the soonest to end, ties by token.
        var all: [(Timestamp, FencingToken)] = m.locks.values.compactMap { r in r.holder.flatMap { $0.expiresAt > time ? ($0.expiresAt, $0.token) : nil } }
        all += m.jobs.values.filter { $0.state == .running }.map { ($0.leaseExpiresAt, $0.claimToken) }
        all.sort { $0 < $1 }
        #expect(all.count > 20)
        for limit in [1, 20, 1000] as [UInt16] {
            guard case .leases(let leases) = m.query(.listLeases(limit: limit)) else { Issue.record("no leases reply"); return }
            #expect(leases.map { [$0.expiresAt.milliseconds, $0.token.rawValue] } == all.prefix(Int(limit)).map { [$0.0.milliseconds, $0.1.rawValue] })
        }
    }
}
