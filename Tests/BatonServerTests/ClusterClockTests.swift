import BatonProtocol
import Testing

@testable import BatonServer

/// The cluster's time rules, with the monotonic clock as an argument (milliseconds).
@Suite struct ClusterClockTests {
    let wallClock = Timestamp(milliseconds: 1_764_633_600_000)  // 2025-12-02

    @Test func aNewClustersFirstLeaderStartsFromTheWallClock() {
        var clock = ClusterClock(floor: .zero, at: 5)
        clock.lead(heard: .zero, origin: wallClock, at: 100)
        #expect(clock.now(at: 150) == wallClock.adding(Milliseconds(50)))
        #expect(clock.stamp(at: 160) == wallClock.adding(Milliseconds(60)))
    }

    /// Elapsed time is counted in 64 bits: the clock does not stop after 2³² ms (49.7 days) in office.
    @Test func aLeaderInOfficeForMonthsKeepsCounting() {
        var clock = ClusterClock(floor: wallClock, at: 0)
        clock.lead(heard: .zero, origin: .zero, at: 0)
        let ninetyDays: UInt64 = 90 * 86_400_000
        #expect(clock.now(at: ninetyDays).milliseconds == wallClock.milliseconds + ninetyDays)
    }

    /// A new leader continues from the newest time it knows: a stamp in its log, or its old leader's
    /// last heartbeat. Taking the stamp alone would add the old leader's time since it (up to a whole
    /// TTL for an idle lease) to every lease.
    @Test func aNewLeaderContinuesFromItsOldLeadersLastHeartbeat() {
        let stamped = wallClock
        let heard = wallClock.adding(Milliseconds(25_000))
        var clock = ClusterClock(floor: .zero, at: 0)
        clock.applied(stamped, at: 1_000)
        clock.lead(heard: heard, origin: wallClock.adding(Milliseconds(99_999)), at: 30_000)
        #expect(clock.now(at: 30_300) == heard.adding(Milliseconds(300)))

        var older = ClusterClock(floor: .zero, at: 0)
        older.applied(heard, at: 1_000)
        older.lead(heard: stamped, origin: .zero, at: 2_000)  // a heartbeat older than the log's newest stamp
        #expect(older.now(at: 2_000) == heard)
    }

    /// A member restarted from disk resumes from its state's time: time stands still while it is down,
    /// and the wall clock (far ahead by then) gives no lease a jump.
    @Test func aRestartedMemberResumesFromItsStatesTime() {
        var clock = ClusterClock(floor: wallClock, at: 7)
        clock.lead(heard: .zero, origin: wallClock.adding(Milliseconds(3_600_000)), at: 10)
        #expect(clock.now(at: 10) == wallClock)
    }

    @Test func stampsNeverGoBackwards() {
        var clock = ClusterClock(floor: .zero, at: 0)
        clock.lead(heard: .zero, origin: wallClock, at: 0)
        let later = wallClock.adding(Milliseconds(5_000))
        clock.applied(later, at: 10)  // applied from an earlier leader's log, ahead of this reading
        #expect(clock.stamp(at: 20) == later)
        #expect(clock.stamp(at: 6_000) == wallClock.adding(Milliseconds(6_000)))
        #expect(clock.lastStamp == wallClock.adding(Milliseconds(6_000)))
    }

    /// A follower's reading (for PING and NODE_STATUS) runs on from the newest stamp it applied.
    @Test func aFollowerReadsOnFromItsNewestStamp() {
        var clock = ClusterClock(floor: .zero, at: 0)
        clock.applied(wallClock, at: 1_000)
        #expect(clock.now(at: 1_500) == wallClock.adding(Milliseconds(500)))
        clock.lead(heard: .zero, origin: .zero, at: 2_000)
        clock.follow()
        clock.applied(wallClock.adding(Milliseconds(1_000)), at: 2_100)
        #expect(clock.now(at: 2_600) == wallClock.adding(Milliseconds(1_500)))
        // An idle log: the leader's heartbeats say more than the stamps.
        #expect(clock.now(at: 2_600, heard: wallClock.adding(Milliseconds(9_000))) == wallClock.adding(Milliseconds(9_000)))
    }
}
