import BatonProtocol

extension StateMachine {
    /// Limits and defaults of the state machine. Every replica must apply commands with the same values.
    public struct Configuration: Sendable, Hashable {
        /// Most schedules held; a put of another is refused with QUOTA_EXCEEDED.
        public var maxSchedules: Int = 100_000
        /// Shortest interval of a schedule.
        public var minScheduleInterval: Milliseconds = 1_000
        /// Longest jitter of a schedule (1 h).
        public var maxScheduleJitter: Milliseconds = 3_600_000
        /// Longest catch-up window of a schedule (7 days).
        public var maxCatchUp: Milliseconds = 604_800_000
        /// Longest key, job type, owner, worker or unique key, in bytes of UTF-8.
        public var maxKeyLength: Int = 256
        /// Shortest lease a lock or a job claim may ask for.
        public var minTTL: Milliseconds = 100
        /// Longest lease a lock or a job claim may ask for (24 h).
        public var maxTTL: Milliseconds = 86_400_000
        /// Longest an acquire or a claim may wait in line (1 h).
        public var maxWait: Milliseconds = 3_600_000
        /// Longest run-after delay of a job (30 days).
        public var maxDelay: Milliseconds = 2_592_000_000
        /// Most job types one claim may name.
        public var maxClaimTypes: Int = 32
        /// The most jobs one JOB_ADD_BATCH adds, or one JOB_CLAIM_BATCH claims.
        public var maxBatch: Int = 1000
        /// Most attempts a job may be given.
        public var maxAttemptsLimit: UInt16 = 1000
        /// Attempts of a job added with `maxAttempts` zero.
        public var defaultMaxAttempts: UInt16 = 5
        /// Claim lease of a job added with `timeout` zero.
        public var defaultJobTimeout: Milliseconds = 60_000
        /// First retry delay of a job added with `backoff` zero.
        public var defaultBackoff: Milliseconds = 1_000
        /// Retry delays double up to this (1 h).
        public var maxBackoff: Milliseconds = 3_600_000
        /// How long a completed job stays readable before it is removed (10 min).
        public var completedRetention: Milliseconds = 600_000
        /// Most completed jobs kept; beyond it the oldest are removed early.
        public var maxCompletedJobs: Int = 100_000
        /// Most jobs held that are not completed (queued, delayed, running or dead); an add beyond it
        /// is refused with QUOTA_EXCEEDED. Completed jobs do not count: they make room (`maxJobBytes`).
        public var maxJobs: Int = 1_000_000
        /// Most payload and result bytes of all jobs held (1 GiB). An add that would pass it first
        /// removes completed jobs, oldest first; if the unfinished jobs alone leave no room, it is
        /// refused with QUOTA_EXCEEDED. A completion is never refused: it removes completed jobs instead.
        public var maxJobBytes: Int = 1 << 30
        /// Most lock keys held or waited for at once; an acquire of another key is refused with
        /// QUOTA_EXCEEDED.
        public var maxLocks: Int = 1_000_000
        /// Most clients with a session at once (each remembers up to `sessionWindow` answers until
        /// `sessionTimeout` after its last command). A command from a client without one, beyond it,
        /// is refused with QUOTA_EXCEEDED: a session is never dropped early, or a retry could be
        /// applied twice.
        public var maxClients: Int = 100_000
        /// With authentication on, most sessions one user without `cluster:admin` may hold at once
        /// (0: a quarter of `maxClients`). Such users together may hold at most nine tenths of
        /// `maxClients`: the rest is kept for admins, so one user cannot lock the operators out.
        public var maxClientsPerUser: Int = 0
        /// Longest text a failure may record; longer texts are cut.
        public var maxErrorLength: Int = 4096
        /// Answers remembered per client for retries.
        public var sessionWindow: Int = 256
        /// A client that sends no command for this long is forgotten (10 min).
        public var sessionTimeout: Milliseconds = 600_000
        /// Most entries a list query returns.
        public var maxListLimit: Int = 1000

        public init() {}
    }
}
