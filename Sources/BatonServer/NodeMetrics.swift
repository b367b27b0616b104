import BatonCore
import BatonProtocol
import Metrics
import NIOCore
import Prometheus

/// The node's metrics, through swift-metrics into a Prometheus registry of the node's own (so
/// several nodes in one process, as in tests, keep theirs apart). Request counters and timers are
/// made once per (operation, result) and kept; gauges of the state are set when scraped.
final class NodeMetrics {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private var requestCounters: [UInt32: Metrics.Counter] = [:]
    private var authFailureCounters: [String: Metrics.Counter] = [:]
    private var requestTimers: [UInt8: Metrics.Timer] = [:]
    let fsyncTimer: Metrics.Timer
    let batchSize: Recorder
    private let gauges: [String: Metrics.Gauge]
    private var jobGauges: [String: Metrics.Gauge] = [:]
    let scheduleLag: Metrics.Timer
    private var quotaGauges: [String: (used: Metrics.Gauge, limit: Metrics.Gauge)] = [:]

    init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "baton_request_duration_seconds": [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2),
            ],
            "baton_schedule_fire_lag_seconds": [
                .milliseconds(1), .milliseconds(2), .milliseconds(3), .milliseconds(5), .milliseconds(7), .milliseconds(10),
                .milliseconds(15), .milliseconds(20), .milliseconds(25), .milliseconds(30), .milliseconds(40),
                .milliseconds(50), .milliseconds(75), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                .seconds(1), .seconds(5), .seconds(30), .seconds(60),
            ],
            "baton_wal_fsync_duration_seconds": [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50),
            ],
        ]
        factory.valueHistogramBuckets = ["baton_wal_batch_entries": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]]
        self.factory = factory
        fsyncTimer = Metrics.Timer(label: "baton_wal_fsync_duration_seconds", factory: factory)
        scheduleLag = Metrics.Timer(label: "baton_schedule_fire_lag_seconds", factory: factory)
        batchSize = Recorder(label: "baton_wal_batch_entries", aggregate: true, factory: factory)
        var g: [String: Metrics.Gauge] = [:]
        for name in [
            "baton_locks_held", "baton_lock_waiters", "baton_claim_waiters", "baton_leases", "baton_clients",
            "baton_connections", "baton_raft_term", "baton_raft_commit_index", "baton_raft_applied_index",
        ] {
            g[name] = Metrics.Gauge(label: name, factory: factory)
        }
        gauges = g
    }

    /// Counts one answered request and how long it took.
    /// Counts one refused authentication or permission, by reason: `unknown_token` (AUTH with a token
    /// no user holds), `unauthenticated` (a request without a valid token), `permission_denied`.
    func authFailure(_ reason: String) {
        let counter: Metrics.Counter
        if let c = authFailureCounters[reason] {
            counter = c
        } else {
            counter = Metrics.Counter(label: "baton_auth_failures_total", dimensions: [("reason", reason)], factory: factory)
            authFailureCounters[reason] = counter
        }
        counter.increment()
    }

    func recordRequest(_ opcode: Opcode, reply: Reply, since started: NIODeadline) {
        let base = opcode.rawValue & 0x7F
        let code: UInt16 = if case .error(let e) = reply { e.code.rawValue } else { 0 }
        let key = UInt32(base) << 16 | UInt32(code)
        let counter: Metrics.Counter
        if let c = requestCounters[key] {
            counter = c
        } else {
            let op = Opcode(rawValue: base).name.lowercased()
            let result = code == 0 ? "ok" : ErrorCode(rawValue: code).name.lowercased()
            counter = Metrics.Counter(label: "baton_requests_total", dimensions: [("op", op), ("result", result)], factory: factory)
            requestCounters[key] = counter
        }
        counter.increment()
        if code == ErrorCode.unauthenticated.rawValue || code == ErrorCode.permissionDenied.rawValue {
            authFailure(base == Opcode.auth.rawValue ? "unknown_token" : ErrorCode(rawValue: code).name.lowercased())
        }
        let timer: Metrics.Timer
        if let t = requestTimers[base] {
            timer = t
        } else {
            timer = Metrics.Timer(
                label: "baton_request_duration_seconds", dimensions: [("op", Opcode(rawValue: base).name.lowercased())],
                factory: factory)
            requestTimers[base] = timer
        }
        timer.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
    }

    /// Records, for each slot fired, skipped or buffered, the lag from the slot's time to `time`, when
    /// its entry was applied on the leader. (The counts per schedule come from the replicated state:
    /// `ScheduleExposition`.)
    func schedulesSettled(_ outcomes: [ScheduleOutcome], at time: Timestamp) {
        for outcome in outcomes {
            if case .missed = outcome.kind { continue }
            scheduleLag.recordNanoseconds(Int64(outcome.slot.distance(to: time)) * 1_000_000)
        }
    }

    /// Sets the gauges from the node's current state, just before a scrape.
    func refresh(_ status: NodeStatus, machine: StateMachine) {
        let m = status.summary
        gauges["baton_locks_held"]?.record(Int(m.locksHeld))
        gauges["baton_lock_waiters"]?.record(Int(m.lockWaiters))
        gauges["baton_claim_waiters"]?.record(Int(m.claimWaiters))
        gauges["baton_leases"]?.record(Int(m.locksHeld + m.jobsRunning))
        gauges["baton_clients"]?.record(Int(m.sessions))
        gauges["baton_connections"]?.record(Int(status.connections))
        gauges["baton_raft_term"]?.record(Int(status.term))
        gauges["baton_raft_commit_index"]?.record(Int(status.commitIndex))
        gauges["baton_raft_applied_index"]?.record(Int(status.appliedIndex))
        // Every (type, state) seen so far keeps its gauge, so a state that empties reads 0, not stale.
        for key in jobGauges.keys { jobGauges[key]?.record(0) }
        for (type, states) in machine.jobCounts() {
            for state in JobState.allCases {
                let key = "\(type)\u{0}\(state)"
                if jobGauges[key] == nil, states[state] == nil { continue }
                let gauge = jobGauges[key] ?? Metrics.Gauge(label: "baton_jobs", dimensions: [("type", type), ("state", state.description)], factory: factory)
                jobGauges[key] = gauge
                gauge.record(states[state] ?? 0)
            }
        }
        for quota in machine.quotas {
            let gauges = quotaGauges[quota.name] ?? (
                Metrics.Gauge(label: "baton_quota_used", dimensions: [("quota", quota.name)], factory: factory),
                Metrics.Gauge(label: "baton_quota_limit", dimensions: [("quota", quota.name)], factory: factory))
            quotaGauges[quota.name] = gauges
            gauges.used.record(quota.used)
            gauges.limit.record(quota.limit)
        }
    }
}
