import BatonProtocol

/// The cluster's time: what the leader stamps on every entry, so every member expires a lease at the
/// same log position. Pure: each call takes the monotonic clock's reading (`at`, milliseconds), so
/// the rules below are tested without waiting.
///
/// - A leader counts from its **base**: the newest time it knows of when it takes office (the newest
///   stamp in its log, or the newest time a leader's heartbeat told it, whichever is later) and adds
///   the time it has led. A new cluster's first leader starts from the wall clock (`origin`).
/// - So the clock never runs ahead of real time: a lease never ends earlier than its holder was
///   promised. A failover adds to a lease only the time from the old leader's last heartbeat to the
///   new leader's first reading (an election timeout or so), never a fresh TTL.
/// - Stamps never go backwards (`lastStamp`).
/// - A follower reads on from the newest stamp it applied, or its leader's newest heartbeat if that
///   is later; that reading is for display (PING, NODE_STATUS) and never stamps anything.
struct ClusterClock: Sendable, Equatable {
    /// The newest time stamped or applied.
    private(set) var lastStamp: Timestamp
    /// The monotonic reading when `lastStamp` was raised (a follower reads on from there).
    private var lastStampAt: UInt64
    private var leading = false
    private var leaderBase = Timestamp.zero
    private var leaderSince: UInt64 = 0

    /// A member starting with `floor` the newest time it holds (its state's time, its log's newest stamp).
    init(floor: Timestamp, at mono: UInt64) {
        lastStamp = floor
        lastStampAt = mono
    }

    /// Takes office. `heard` is the newest time in a heartbeat from a leader (zero: none);
    /// `origin` (the wall clock) is used only when neither the log nor a leader ever told a time.
    mutating func lead(heard: Timestamp, origin: Timestamp, at mono: UInt64) {
        var base = max(lastStamp, heard)
        if base == .zero { base = origin }
        leading = true
        leaderBase = base
        leaderSince = mono
    }

    mutating func follow() {
        leading = false
    }

    /// The cluster's time now: on the leader, what it stamps next; on a follower, an estimate
    /// (`heard`: the newest time in its leader's heartbeats).
    func now(at mono: UInt64, heard: Timestamp = .zero) -> Timestamp {
        if leading { return max(lastStamp, Timestamp(milliseconds: leaderBase.milliseconds &+ (mono &- leaderSince))) }
        return max(heard, Timestamp(milliseconds: lastStamp.milliseconds &+ (mono &- lastStampAt)))
    }

    /// The leader's stamp for an entry it proposes now.
    mutating func stamp(at mono: UInt64) -> Timestamp {
        let time = now(at: mono)
        raise(to: time, at: mono)
        return time
    }

    /// An entry stamped `time` was applied (or a snapshot of that time installed).
    mutating func applied(_ time: Timestamp, at mono: UInt64) {
        raise(to: time, at: mono)
    }

    private mutating func raise(to time: Timestamp, at mono: UInt64) {
        guard time > lastStamp else { return }
        lastStamp = time
        lastStampAt = mono
    }
}
