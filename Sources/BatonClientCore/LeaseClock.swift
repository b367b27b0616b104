import BatonProtocol

/// How long a held lease (a lock or a job's claim) surely lasts, counted on the client's own
/// monotonic clock, with no I/O: the client's half of Baton's promise (PROTOCOL.md section 7,
/// "Counting a lease"), one value that the Swift client, the simulator's clients and, by the
/// checked-in traces of `Clients/testdata/`, the Python client's `baton.lease.LeaseClock` share.
///
/// - A grant or renewal answered with `leaseLeft` lasts at least that long from when its request
///   was **sent**: the node started counting after the request arrived.
/// - The holder's work stops a tenth of the ttl before that instant (`stopAt`): room for the two
///   clocks to differ in rate and for the work to notice.
/// - A grant that came late (a long wait, a failover) is renewed before the work starts
///   (`needsConfirming`): a renewal that succeeds proves the lease never ended in between.
/// - It is renewed every third of the ttl (`renewEvery`); a renewal never moves the end earlier.
///
/// Time is an argument: `Instant` is `ContinuousClock.Instant` in the client and the simulator's
/// own instant in its runs.
public struct LeaseClock<Instant: InstantProtocol>: Hashable, Sendable where Instant.Duration == Duration {
    /// The lease's ttl: what its margin and renewal period are fractions of.
    public let ttl: Duration
    /// The instant before which the lease surely holds on the node.
    public private(set) var validUntil: Instant

    /// A lease granted for `ttl`, its grant sent at `sent` and answered with `leaseLeft`.
    public init(ttl: Duration, sent: Instant, leaseLeft: Milliseconds) {
        self.init(ttl: ttl, validUntil: Self.validUntil(sent: sent, leaseLeft: leaseLeft))
    }

    /// As `init(ttl:sent:leaseLeft:)`, with the answer's arrival at `answered` for `faults` (the
    /// simulator's negative control counts from it).
    public init(ttl: Duration, sent: Instant, answered: Instant, leaseLeft: Milliseconds, faults: ClientFaults) {
        self.init(ttl: ttl, sent: faults.countsFromArrival ? answered : sent, leaseLeft: leaseLeft)
    }

    /// A lease known to hold until `validUntil`.
    public init(ttl: Duration, validUntil: Instant) {
        self.ttl = ttl
        self.validUntil = validUntil
    }

    /// Until when an answer of `leaseLeft` to a request sent at `sent` surely holds.
    public static func validUntil(sent: Instant, leaseLeft: Milliseconds) -> Instant {
        sent.advanced(by: leaseLeft.duration)
    }

    /// How long before `validUntil` the holder stops: a tenth of the ttl.
    public var margin: Duration { ttl / 10 }

    /// When the holder must have stopped.
    public var stopAt: Instant { validUntil.advanced(by: .zero - margin) }

    /// How often the holder renews: every third of the ttl.
    public var renewEvery: Duration { ttl / 3 }

    /// A renewal sent at `sent` answered `leaseLeft`.
    public mutating func renewed(sent: Instant, leaseLeft: Milliseconds) {
        renewed(until: Self.validUntil(sent: sent, leaseLeft: leaseLeft))
    }

    /// As `renewed(sent:leaseLeft:)`, with the answer's arrival at `answered` for `faults`.
    public mutating func renewed(sent: Instant, answered: Instant, leaseLeft: Milliseconds, faults: ClientFaults) {
        renewed(sent: faults.countsFromArrival ? answered : sent, leaseLeft: leaseLeft)
    }

    /// A renewal showed the lease holds until `until`; an answer that says less changes nothing.
    public mutating func renewed(until: Instant) {
        validUntil = max(validUntil, until)
    }

    /// Whether the holder may still work at `now`.
    public func holds(at now: Instant) -> Bool { now < stopAt }

    /// Whether the grant came so late that it must be renewed before the work starts.
    public func needsConfirming(at now: Instant) -> Bool { now.duration(to: validUntil) < ttl / 2 }
}
