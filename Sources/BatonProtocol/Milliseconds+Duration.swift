extension Milliseconds {
    /// `d` in whole milliseconds, clamped to what the wire carries.
    public init(_ d: Duration) {
        let (s, atto) = d.components
        let ms = max(0, s * 1000 + atto / 1_000_000_000_000_000)
        self.init(UInt32(clamping: ms))
    }

    public var duration: Duration { .milliseconds(Int64(rawValue)) }
}
