import BatonProtocol

/// What a renew or extend answered: the lease's new end in the node's time, and the time it had
/// left when the node sent the answer. Count `leaseLeft` from when the request was sent
/// (PROTOCOL.md section 7, "Counting a lease"); `withLock` and `JobWorker` do.
public struct LeaseRenewal: Hashable, Sendable {
    public var expiresAt: Timestamp
    public var leaseLeft: Milliseconds

    public init(expiresAt: Timestamp, leaseLeft: Milliseconds) {
        self.expiresAt = expiresAt
        self.leaseLeft = leaseLeft
    }
}
