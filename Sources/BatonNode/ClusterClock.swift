import BatonProtocol
import BatonRaft

/// The cluster's time: what the leader stamps on every entry, so every member expires a lease at the
/// same log position. Pure: each call takes the monotonic clock's reading (`at`, milliseconds), so
/// the rules below are tested without waiting.
///
/// **The rule.** The cluster's time never gains on real time: between any two stamps that end up in
/// the committed log, and between a leader's reading (the time an answer was sent at) and any stamp
/// committed after it, the cluster's time advances no more than the real time between them. A lease
/// therefore never ends earlier than the time its holder was told it had left.
///
/// Each leader counts from its **base** and adds the time it has led. The base may come only from
/// values that lie on the committed history's own timeline:
/// - the newest stamp in its log when it takes office (every entry there will be committed by it);
/// - the state's time (applied entries, a snapshot);
/// - the newest reading it heard from a leader (heartbeats, or its own readings while it led),
///   *only when that leader's term is the last term in its log*. A heard leader of an older term may
///   have been deposed by one that counted from less (a paused leader resumes, its clock having run
///   through the election); a newer term's leader with no entry in the log may count from a log that
///   lacked a leader whose entries are here.
/// Never from the stamps of its own proposals: an entry that was not committed and was later cut
/// from the log (a paused leader stamps on after it was deposed) must leave nothing behind.
/// A new cluster's first leader starts from the wall clock (`origin`).
///
/// A follower's reading (PING, NODE_STATUS) runs on from the newest time it applied or heard; it is
/// for display and never stamps anything.
package struct ClusterClock: Sendable, Equatable {
    /// A time and the monotonic reading it was taken at.
    package struct Reading: Sendable, Equatable {
        var time: Timestamp
        var at: UInt64
    }

    /// The newest time of an applied entry or installed snapshot.
    package private(set) var applied: Reading
    /// The newest reading of the leader of `heardTerm`: its heartbeats, or this member's own
    /// readings while it led that term.
    private var heard: Reading?
    private var heardTerm = Term(0)
    /// While leading: the term, the base, and the monotonic reading when this member took office.
    private var office: Office?

    struct Office: Sendable, Equatable {
        var term: Term
        var base: Timestamp
        var since: UInt64
    }

    /// A fault put back for the simulator's negative control (`InjectedFaults.clockFloorsOwnStamps`):
    /// the newest stamp this member ever proposed, counted as a floor of its next term's base.
    private var ownStampFloor: Timestamp?

    /// A member starting with `stateTime`, the time of the state it recovered (zero: none).
    package init(stateTime: Timestamp, at mono: UInt64, faults: InjectedFaults = InjectedFaults()) {
        applied = Reading(time: stateTime, at: mono)
        if faults.clockFloorsOwnStamps { ownStampFloor = .zero }
    }

    package var isLeading: Bool { office != nil }

    /// A heartbeat of the leader of `term` told its time.
    package mutating func heard(_ time: Timestamp, term: Term, at mono: UInt64) {
        guard time != .zero, term >= heardTerm else { return }
        if term > heardTerm || time > (heard?.time ?? .zero) {
            heard = Reading(time: time, at: mono)
            heardTerm = term
        }
    }

    /// Takes office in `term`. `logNewest` is the newest stamp in this member's log and `logLastTerm`
    /// the term of its last entry before this term's; `origin` (the wall clock) is used only when
    /// nothing ever told a time.
    package mutating func lead(term: Term, logNewest: Timestamp, logLastTerm: Term, origin: Timestamp, at mono: UInt64) {
        var base = max(applied.time, logNewest)
        if let heard, heardTerm == logLastTerm { base = max(base, heard.time) }
        if let ownStampFloor { base = max(base, ownStampFloor) }
        if base == .zero { base = origin }
        office = Office(term: term, base: base, since: mono)
    }

    /// Steps down. Its own last reading counts as heard from the leader of the term it led.
    package mutating func follow(at mono: UInt64) {
        guard let office else { return }
        let reading = now(at: mono)
        self.office = nil
        heard(reading, term: office.term, at: mono)
    }

    /// The cluster's time now: on the leader, what it stamps next; on a follower, an estimate that
    /// runs on from the newest time it applied or heard.
    package func now(at mono: UInt64) -> Timestamp {
        if let office {
            return max(applied.time, Timestamp(milliseconds: office.base.milliseconds &+ (mono &- office.since)))
        }
        var newest = applied
        if let heard, heard.time > newest.time { newest = heard }
        return Timestamp(milliseconds: newest.time.milliseconds &+ (mono &- newest.at))
    }

    /// The leader's stamp for an entry it proposes now. It raises nothing: a stamp counts for a later
    /// leader only once it is in that leader's log.
    package mutating func stamp(at mono: UInt64) -> Timestamp {
        precondition(office != nil, "only a leader stamps")
        let time = now(at: mono)
        if let floor = ownStampFloor { ownStampFloor = max(floor, time) }
        return time
    }

    /// An entry stamped `time` was applied (or a snapshot of that time installed).
    package mutating func applied(_ time: Timestamp, at mono: UInt64) {
        guard time > applied.time else { return }
        applied = Reading(time: time, at: mono)
    }
}
