import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Each node: id, address, role, term, commit and applied index, lag, uptime; the leader marked.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        // Every endpoint is asked on its own: a cluster's members each report their own role and indexes.
        var answers: [(endpoint: String, status: NodeStatus?)] = []
        var lastError: (any Error)?
        for endpoint in try global.endpointList() {
            do {
                answers.append((endpoint, try await global.withClient(endpoint: endpoint) { try await $0.nodeStatus() }))
            } catch {
                answers.append((endpoint, nil))
                lastError = error
            }
        }
        if answers.allSatisfy({ $0.status == nil }), let lastError { throw lastError }
        let view = StatusView(answers)
        global.emit(view) {
            let nodes = table(
                ["", "NODE", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "UPTIME", "DURABLE"],
                view.nodes.map {
                    $0.role == "unreachable"
                        ? ["", $0.id, $0.address, $0.role, "—", "—", "—", "—", "—", "—"]
                        : [$0.leader ? "*" : "", $0.id, $0.address, $0.role, "\($0.term)", "\($0.commitIndex)", "\($0.appliedIndex)",
                           "\($0.lag)", "\($0.uptimeSeconds)s", $0.durable ? "yes" : "no (in memory)"]
                })
            let t = view.totals
            return nodes + "\n\nlocks held \(t.locksHeld), waiting \(t.lockWaiters) · jobs queued \(t.jobsQueued), running \(t.jobsRunning), completed \(t.jobsCompleted), dead \(t.jobsDead) · claims waiting \(t.claimWaiters) · clients \(t.clients)"
        }
    }
}

struct Locks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Held locks: list them, show one with its waiters, or break one.",
        subcommands: [List.self, Get.self, Release.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Held locks in key order.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only keys starting with this.") var prefix = ""

        func run() async throws {
            let (locks, now) = try await global.withClient { c in
                var all: [LockInfo] = []
                var after = ""
                while true {
                    let page = try await c.listLocks(prefix: prefix, after: after, limit: 1000)
                    all += page
                    guard let last = page.last, page.count == 1000 else { break }
                    after = last.key
                }
                return (all, try await c.serverTime())
            }
            let views = locks.map { LockView($0, now: now) }
            global.emit(views) {
                table(
                    ["KEY", "OWNER", "TOKEN", "EXPIRES IN", "WAITERS"],
                    views.map { [$0.key, $0.owner, "\($0.token)", seconds($0.expiresInMs), "\($0.waiters.count)"] })
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Holder, token, when granted, expires in, and the waiters in order.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lock's key.") var key: String

        func run() async throws {
            let (lock, now) = try await global.withClient { c in (try await c.getLock(key), try await c.serverTime()) }
            guard let lock else { throw CtlError.refused("lock '\(key)' is not held") }
            let view = LockView(lock, now: now)
            global.emit(view) {
                var text = """
                    key         \(view.key)
                    holder      \(view.owner) (client \(view.clientID))
                    token       \(view.token)
                    granted     \(seconds(Int64(now.milliseconds) - Int64(view.grantedAtMs))) ago
                    expires in  \(seconds(view.expiresInMs))
                    waiters     \(view.waiters.count)
                    """
                for (i, w) in view.waiters.enumerated() {
                    text += "\n  \(i + 1). \(w.owner) (client \(w.clientID)), gives up in \(seconds(Int64(w.deadlineMs) - Int64(now.milliseconds)))"
                }
                return text
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Break a lock: end its lease whoever holds it (recorded in the log). Needs --force.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lock's key.") var key: String
        @Flag(help: "Yes, end another client's lease.") var force = false

        func validate() throws {
            guard force else { throw ValidationError("releasing another client's lock needs --force") }
        }

        func run() async throws {
            let token = try await global.withClient { try await $0.forceReleaseLock(key) }
            struct Released: Codable { var key: String; var releasedToken: UInt64 }
            global.emit(Released(key: key, releasedToken: token.rawValue)) { "released '\(key)' (token \(token))" }
        }
    }
}

struct Leases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Live leases.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every live lease (lock or job claim): owner and remaining time, soonest to end first.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (leases, now) = try await global.withClient { c in (try await c.listLeases(), try await c.serverTime()) }
            let views = leases.map { LeaseView($0, now: now) }
            global.emit(views) {
                table(
                    ["KIND", "KEY / JOB", "OWNER", "TOKEN", "REMAINING"],
                    views.map { v in
                        [v.kind, v.jobID.map { "job \($0) (\(v.key))" } ?? v.key, v.owner, "\(v.token)", seconds(v.expiresInMs)]
                    })
            }
        }
    }
}

extension JobState: ExpressibleByArgument {
    public init?(argument: String) {
        guard let s = JobState.allCases.first(where: { $0.description == argument }) else { return nil }
        self = s
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Jobs: list, show, add, retry a dead one, delete, purge.",
        subcommands: [List.self, Get.self, Add.self, Retry.self, Delete.self, Purge.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs in id order, filtered by type and state.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only jobs of this type.") var type = ""
        @Option(help: "Only jobs in this state: queued, running, completed, dead.") var state: JobState?
        @Option(help: "At most this many.") var limit = 1000

        func run() async throws {
            let (jobs, now) = try await global.withClient { c in
                var all: [JobInfo] = []
                var cursor = JobID(0)
                repeat {
                    let page = try await c.listJobs(JobFilter(type: type, state: state, after: cursor, limit: 1000))
                    all += page.jobs
                    cursor = page.next
                } while cursor != JobID(0) && all.count < limit
                return (Array(all.prefix(limit)), try await c.serverTime())
            }
            let views = jobs.map { JobView($0, now: now) }
            global.emit(views) {
                table(
                    ["ID", "TYPE", "STATE", "ATTEMPTS", "WORKER", "LEASE", "LAST ERROR"],
                    views.map {
                        ["\($0.id)", $0.type, $0.state, "\($0.attempts)/\($0.maxAttempts)", $0.worker,
                         $0.leaseExpiresInMs.map(seconds) ?? "", String($0.lastError.prefix(40))]
                    })
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One job, every field.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job's id.") var id: UInt64

        func run() async throws {
            let (job, now) = try await global.withClient { c in (try await c.getJob(JobID(id)), try await c.serverTime()) }
            let v = JobView(job, now: now)
            global.emit(v) {
                """
                id           \(v.id)
                type         \(v.type)
                state        \(v.state)
                priority     \(v.priority)
                attempts     \(v.attempts)/\(v.maxAttempts)
                unique key   \(v.uniqueKey)
                worker       \(v.worker)
                lease        \(v.leaseExpiresInMs.map { "ends in \(seconds($0))" } ?? "none")
                last error   \(v.lastError)
                payload      \(v.payload)
                result       \(v.result)
                """
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a job.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The job's type.") var type: String
        @Option(help: "The payload, as text.") var payload = ""
        @Option(help: "Higher runs first.") var priority: Int32 = 0
        @Option(help: "Run no sooner than this from now (e.g. 30s).") var delay: DurationArgument?
        @Option(help: "Attempts before the job is dead (default 5).") var maxAttempts: UInt16 = 0
        @Option(help: "Lease of each claim (e.g. 60s; default 60s).") var timeout: DurationArgument?
        @Option(help: "An add while an unfinished job has this key returns that job.") var uniqueKey = ""

        func run() async throws {
            let spec = JobSpec(
                type: type, payload: Array(payload.utf8), priority: priority,
                delay: Milliseconds(UInt32(clamping: delay?.milliseconds ?? 0)), maxAttempts: maxAttempts,
                timeout: Milliseconds(UInt32(clamping: timeout?.milliseconds ?? 0)), uniqueKey: uniqueKey)
            let (id, created) = try await global.withClient { try await $0.addJob(spec) }
            struct Added: Codable { var id: UInt64; var created: Bool }
            global.emit(Added(id: id.rawValue, created: created)) {
                created ? "added job \(id)" : "job \(id) with unique key '\(uniqueKey)' is already unfinished; not added again"
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move a dead job back to the queue with fresh attempts.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job's id.") var id: UInt64

        func run() async throws {
            try await global.withClient { try await $0.requeueJob(JobID(id)) }
            struct Retried: Codable { var id: UInt64; var state: String }
            global.emit(Retried(id: id, state: "queued")) { "job \(id) is queued again" }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a job, in any state.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job's id.") var id: UInt64

        func run() async throws {
            try await global.withClient { try await $0.deleteJob(JobID(id)) }
            struct Deleted: Codable { var id: UInt64 }
            global.emit(Deleted(id: id)) { "deleted job \(id)" }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete completed or dead jobs older than a time.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "completed or dead.") var state: JobState
        @Option(help: "Only jobs that reached the state at least this long ago (e.g. 24h).") var olderThan: DurationArgument

        func validate() throws {
            guard state == .completed || state == .dead else { throw ValidationError("--state must be completed or dead") }
        }

        func run() async throws {
            let n = try await global.withClient { try await $0.purgeJobs(state: state, olderThan: olderThan.duration) }
            struct Purged: Codable { var purged: Int }
            global.emit(Purged(purged: n)) { "purged \(n) \(state) job\(n == 1 ? "" : "s")" }
        }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A live view, like top: the node, queue depths and the leases ending soonest, refreshed in place.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Seconds between refreshes.") var interval: Double = 1
    @Option(help: "Stop after this many refreshes (0: until interrupted).") var count = 0

    func run() async throws {
        try await global.withClient { c in try await loop(c) }
    }

    func loop(_ c: BatonClient) async throws {
        var n = 0
        while count == 0 || n < count {
            n += 1
            let status = try await c.nodeStatus()
            let leases = try await c.listLeases(limit: 20)
            let view = StatusView([(status.address, status)])
            let leaseViews = leases.map { LeaseView($0, now: status.serverTime) }
            if global.output == .json {
                struct Frame: Codable { var status: StatusView; var leases: [LeaseView] }
                global.emit(Frame(status: view, leases: leaseViews)) { "" }
            } else {
                let t = view.totals
                let node = view.nodes[0]
                var screen = "\u{1B}[H\u{1B}[2J"
                screen += "baton \(node.id) \(node.address)  \(node.role)  term \(node.term)  applied \(node.appliedIndex)  up \(node.uptimeSeconds)s\n"
                screen += "locks \(t.locksHeld) held, \(t.lockWaiters) waiting   jobs \(t.jobsQueued) queued, \(t.jobsRunning) running, \(t.jobsCompleted) completed, \(t.jobsDead) dead\n\n"
                screen += table(
                    ["KIND", "KEY", "OWNER", "TOKEN", "REMAINING"],
                    leaseViews.map { [$0.kind, $0.jobID.map { "job \($0)" } ?? $0.key, $0.owner, "\($0.token)", seconds($0.expiresInMs)] })
                print(screen)
            }
            if count == 0 || n < count { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
        }
    }
}
