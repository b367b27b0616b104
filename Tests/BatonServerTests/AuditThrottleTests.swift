import Testing

@testable import BatonServer

/// The audit log's throttle for refusals, with time as an argument.
@Suite struct AuditThrottleTests {
    let second: UInt64 = 1_000_000_000

    @Test func aFloodFromOneHostIsOneLinePerIntervalWithItsCount() {
        var throttle = AuditThrottle(intervalNanoseconds: 10 * second)
        let group = AuditThrottle.group(.permissionDenied, user: "billing", peer: "[IPv4]10.0.0.7/10.0.0.7:50001")
        #expect(throttle.admit(group, now: 0) == .log(suppressed: 0))
        for i in 1...499 {  // 50 a second for 10 s
            #expect(throttle.admit(group, now: UInt64(i) * second / 50) == .suppress)
        }
        #expect(throttle.admit(group, now: 10 * second) == .log(suppressed: 499))
        #expect(throttle.admit(group, now: 10 * second + 1) == .suppress)
        #expect(throttle.admit(group, now: 30 * second) == .log(suppressed: 1))
    }

    @Test func groupsAreByReasonUserAndHostNotPort() {
        let a = AuditThrottle.group(.unauthenticated, user: nil, peer: "[IPv4]10.0.0.7/10.0.0.7:50001")
        #expect(a == AuditThrottle.group(.unauthenticated, user: nil, peer: "[IPv4]10.0.0.7/10.0.0.7:50002"))
        #expect(a != AuditThrottle.group(.unauthenticated, user: nil, peer: "[IPv4]10.0.0.8/10.0.0.8:50001"))
        #expect(a != AuditThrottle.group(.permissionDenied, user: nil, peer: "[IPv4]10.0.0.7/10.0.0.7:50001"))
        #expect(a != AuditThrottle.group(.unauthenticated, user: "x", peer: "[IPv4]10.0.0.7/10.0.0.7:50001"))
        var throttle = AuditThrottle(intervalNanoseconds: 10 * second)
        let b = AuditThrottle.group(.unauthenticated, user: nil, peer: "[IPv4]10.0.0.8/10.0.0.8:50001")
        #expect(throttle.admit(a, now: 0) == .log(suppressed: 0))
        #expect(throttle.admit(b, now: 1) == .log(suppressed: 0), "another host is not held back by the first")
    }

    @Test func aFullTableForgetsFinishedGroupsAndNeverHidesANewOne() {
        var throttle = AuditThrottle(intervalNanoseconds: 10 * second, capacity: 2)
        #expect(throttle.admit("a", now: 0) == .log(suppressed: 0))
        #expect(throttle.admit("b", now: 0) == .log(suppressed: 0))
        #expect(throttle.admit("c", now: second) == .log(suppressed: 0), "full: logged, not remembered")
        #expect(throttle.admit("c", now: 2 * second) == .log(suppressed: 0))
        #expect(throttle.admit("a", now: 3 * second) == .suppress)
        #expect(throttle.admit("d", now: 11 * second) == .log(suppressed: 0), "a and b are over: forgotten")
        #expect(throttle.admit("d", now: 12 * second) == .suppress, "and d is remembered")
    }
}
