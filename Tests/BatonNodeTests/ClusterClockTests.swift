import BatonProtocol
import BatonRaft
import Testing

@testable import BatonNode

/// The cluster's time rules, with the monotonic clock as an argument (milliseconds).
@Suite struct ClusterClockTests {
    let wallClock = Timestamp(milliseconds: 1_764_633_600_000)  // 2025-12-02

    @Test func aNewClustersFirstLeaderStartsFromTheWallClock() {
        var clock = ClusterClock(stateTime: .zero, at: 5)
        clock.lead(term: Term(1), logNewest: .zero, logLastTerm: Term(0), origin: wallClock, at: 100)
        #expect(clock.now(at: 150) == wallClock.adding(Milliseconds(50)))
        #expect(clock.stamp(at: 160) == wallClock.adding(Milliseconds(60)))
    }

    /// Elapsed time is counted in 64 bits: the clock does not stop after 2³² ms (49.7 days) in office.
    @Test func aLeaderInOfficeForMonthsKeepsCounting() {
        var clock = ClusterClock(stateTime: wallClock, at: 0)
        clock.lead(term: Term(1), logNewest: .zero, logLastTerm: Term(0), origin: .zero, at: 0)
        let ninetyDays: UInt64 = 90 * 86_400_000
        #expect(clock.now(at: ninetyDays).milliseconds == wallClock.milliseconds + ninetyDays)
    }

    /// A new leader continues from its old leader's last heartbeat when that leader's term is the
    /// last in its log. Taking the stamp alone would add the old leader's time since it (up to a
    /// whole TTL for an idle lease) to every lease.
    @Test func aNewLeaderContinuesFromItsOldLeadersLastHeartbeat() {
        let stamped = wallClock
        let heard = wallClock.adding(Milliseconds(25_000))
        var clock = ClusterClock(stateTime: .zero, at: 0)
        clock.applied(stamped, at: 1_000)
        clock.heard(heard, term: Term(3), at: 25_000)
        clock.lead(term: Term(4), logNewest: stamped, logLastTerm: Term(3), origin: wallClock.adding(Milliseconds(99_999)), at: 30_000)
        #expect(clock.now(at: 30_300) == heard.adding(Milliseconds(300)))

        var older = ClusterClock(stateTime: .zero, at: 0)
        older.applied(heard, at: 1_000)
        older.heard(stamped, term: Term(3), at: 1_500)  // a heartbeat older than the newest stamp
        older.lead(term: Term(4), logNewest: heard, logLastTerm: Term(3), origin: .zero, at: 2_000)
        #expect(older.now(at: 2_000) == heard)
    }

    /// A heartbeat of a leader whose term is not the last in the log is not trusted: a later leader
    /// may have counted from less (it took office while this one was paused), and its entries are in
    /// the log. The new leader continues from the log's newest stamp.
    @Test func aHeartbeatOfAnOlderTermThanTheLogsIsNotTrusted() {
        var clock = ClusterClock(stateTime: .zero, at: 0)
        clock.heard(wallClock.adding(Milliseconds(5_000)), term: Term(6), at: 100)
        clock.lead(term: Term(8), logNewest: wallClock, logLastTerm: Term(7), origin: .zero, at: 200)
        #expect(clock.now(at: 200) == wallClock)
        // A heartbeat of the log's last term is.
        var trusted = ClusterClock(stateTime: .zero, at: 0)
        trusted.heard(wallClock.adding(Milliseconds(5_000)), term: Term(7), at: 100)
        trusted.lead(term: Term(8), logNewest: wallClock, logLastTerm: Term(7), origin: .zero, at: 200)
        #expect(trusted.now(at: 200) == wallClock.adding(Milliseconds(5_000)))
    }

    /// A leader's own stamps leave nothing behind: a deposed leader whose proposals were cut from
    /// the log continues, when it leads again, from what its log and trusted heartbeats say.
    @Test func aDeposedLeadersOwnStampsAreNotAFloor() {
        var clock = ClusterClock(stateTime: wallClock, at: 0)
        clock.lead(term: Term(6), logNewest: wallClock, logLastTerm: Term(5), origin: .zero, at: 0)
        _ = clock.stamp(at: 3_000)  // paused through an election, resumed, stamped on
        clock.follow(at: 3_050)  // it hears of term 7
        clock.heard(wallClock.adding(Milliseconds(2_000)), term: Term(7), at: 3_060)
        clock.lead(term: Term(8), logNewest: wallClock.adding(Milliseconds(1_900)), logLastTerm: Term(7), origin: .zero, at: 3_100)
        #expect(clock.now(at: 3_100) == wallClock.adding(Milliseconds(2_000)))
    }

    /// A member restarted from disk resumes from its state's time: time stands still while it is down,
    /// and the wall clock (far ahead by then) gives no lease a jump.
    @Test func aRestartedMemberResumesFromItsStatesTime() {
        var clock = ClusterClock(stateTime: wallClock, at: 7)
        clock.lead(term: Term(2), logNewest: .zero, logLastTerm: Term(1), origin: wallClock.adding(Milliseconds(3_600_000)), at: 10)
        #expect(clock.now(at: 10) == wallClock)
    }

    @Test func stampsNeverGoBackwards() {
        var clock = ClusterClock(stateTime: .zero, at: 0)
        clock.lead(term: Term(1), logNewest: .zero, logLastTerm: Term(0), origin: wallClock, at: 0)
        let later = wallClock.adding(Milliseconds(5_000))
        clock.applied(later, at: 10)  // applied from an earlier leader's log, ahead of this reading
        #expect(clock.stamp(at: 20) == later)
        #expect(clock.stamp(at: 6_000) == wallClock.adding(Milliseconds(6_000)))
    }

    /// A follower's reading (for PING and NODE_STATUS) runs on from the newest stamp it applied, or
    /// the newest heartbeat if that is later.
    @Test func aFollowerReadsOnFromItsNewestStamp() {
        var clock = ClusterClock(stateTime: .zero, at: 0)
        clock.applied(wallClock, at: 1_000)
        #expect(clock.now(at: 1_500) == wallClock.adding(Milliseconds(500)))
        clock.lead(term: Term(1), logNewest: wallClock, logLastTerm: Term(0), origin: .zero, at: 2_000)
        clock.follow(at: 2_000)
        clock.applied(wallClock.adding(Milliseconds(1_000)), at: 2_100)
        #expect(clock.now(at: 2_600) == wallClock.adding(Milliseconds(1_500)))
        // An idle log: the leader's heartbeats say more than the stamps.
        clock.heard(wallClock.adding(Milliseconds(9_000)), term: Term(2), at: 2_600)
        #expect(clock.now(at: 2_600) == wallClock.adding(Milliseconds(9_000)))
    }
}
