/// Old bugs of the client's rules, put back one at a time for the simulator's negative controls
/// (`NodeSimulation`'s clients run this core): a seed must catch each. Production code never sets
/// one.
public struct ClientFaults: Hashable, Sendable {
    /// Before issue 16 the client counted a lease from when its answer **arrived**, not from when
    /// its request was sent: a slow answer made the holder count past the lease's end.
    public var countsFromArrival = false

    public init() {}

    /// No fault: the rules as they are.
    public static let none = ClientFaults()
}
