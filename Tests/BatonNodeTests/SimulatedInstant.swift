/// An instant of a simulated run: its real milliseconds. The clients' rules (`BatonClientCore`)
/// take time as an argument; in the simulator they take this.
struct SimulatedInstant: InstantProtocol, CustomStringConvertible {
    var offset: Duration

    init(_ milliseconds: Int) { offset = .milliseconds(milliseconds) }
    private init(offset: Duration) { self.offset = offset }

    func advanced(by duration: Duration) -> SimulatedInstant { SimulatedInstant(offset: offset + duration) }
    func duration(to other: SimulatedInstant) -> Duration { other.offset - offset }
    static func < (a: SimulatedInstant, b: SimulatedInstant) -> Bool { a.offset < b.offset }

    var description: String { "\(offset.simulatedMilliseconds)" }
}

extension Duration {
    /// Whole milliseconds, rounded up: a simulated step is one.
    var simulatedMilliseconds: Int {
        let (seconds, atto) = components
        return Int(seconds) * 1000 + Int((atto + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
