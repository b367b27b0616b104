import BatonProtocol

/// Where the answer to a command goes when it is ready: a TCP connection, or an HTTP/2 stream.
protocol ReplySink: AnyObject {
    /// Sends the answer to the request `requestID` (TCP) or to the stream's one request (HTTP/2).
    func deliver(_ reply: Reply, requestID: RequestID)
    /// The client's address, for the audit log.
    var peerDescription: String { get }
}
