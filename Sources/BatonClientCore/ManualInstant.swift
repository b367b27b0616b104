/// An instant on a clock its user moves: the time of a simulated run or of a trace, for driving the
/// client's rules (`LeaseClock`, `Attempts`) without a real clock. Exact: a tenth of a ttl is kept to
/// the attosecond, never rounded.
public struct ManualInstant: InstantProtocol, CustomStringConvertible {
    /// The time since the clock's origin.
    public let offset: Duration

    /// The instant `milliseconds` after the origin.
    public init<Milliseconds: BinaryInteger>(_ milliseconds: Milliseconds) { offset = .milliseconds(milliseconds) }

    public init(offset: Duration) { self.offset = offset }

    public func advanced(by duration: Duration) -> ManualInstant { ManualInstant(offset: offset + duration) }
    public func duration(to other: ManualInstant) -> Duration { other.offset - offset }
    public static func < (a: ManualInstant, b: ManualInstant) -> Bool { a.offset < b.offset }

    public var description: String { "\(offset)" }
}
