import BatonProtocol
import Testing

@testable import BatonNode

/// The calendar clock (issue 36): UTC as the host reads it, never backwards.
@Suite struct CalendarClockTests {
    @Test func itRunsWithTheMonotonicClockBetweenReadings() {
        var clock = CalendarClock(wall: Timestamp(milliseconds: 1_000_000), at: 50)
        #expect(clock.now(at: 50) == Timestamp(milliseconds: 1_000_000))
        #expect(clock.now(at: 1_050) == Timestamp(milliseconds: 1_001_000))
    }

    /// A host clock stepped back (NTP) holds the calendar until it passes it again: slots wait, none
    /// is judged twice.
    @Test func aStepBackHoldsIt() {
        var clock = CalendarClock(wall: Timestamp(milliseconds: 1_000_000), at: 0)
        #expect(clock.now(at: 500) == Timestamp(milliseconds: 1_000_500))
        clock.read(wall: Timestamp(milliseconds: 990_000), at: 500)
        #expect(clock.now(at: 600) == Timestamp(milliseconds: 1_000_500))
        #expect(clock.now(at: 10_600) == Timestamp(milliseconds: 1_000_500))
        #expect(clock.now(at: 11_100) == Timestamp(milliseconds: 1_000_600))
    }

    /// A step forward moves it at once: the slots it passes come due.
    @Test func aStepForwardMovesItAtOnce() {
        var clock = CalendarClock(wall: Timestamp(milliseconds: 1_000_000), at: 0)
        clock.read(wall: Timestamp(milliseconds: 1_060_000), at: 10)
        #expect(clock.now(at: 10) == Timestamp(milliseconds: 1_060_000))
    }

    /// A new leader whose host clock stands behind the latest slot fired starts from that slot.
    @Test func theLogsLatestSlotIsAFloor() {
        var clock = CalendarClock(wall: Timestamp(milliseconds: 1_000_000), at: 0)
        clock.raise(to: Timestamp(milliseconds: 1_005_000))
        #expect(clock.now(at: 1_000) == Timestamp(milliseconds: 1_005_000))
        #expect(clock.now(at: 6_000) == Timestamp(milliseconds: 1_006_000))
    }
}
