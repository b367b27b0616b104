import BatonRaft

// The tests' one seeded generator is Raft's own `SplitMix64` (a failing seed replays exactly); what
// the tests add to it is here.
extension SplitMix64 {
    /// A number in 0..<n.
    public mutating func roll(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
