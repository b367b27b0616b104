/// How Baton's messages travel over HTTP/2 (PROTOCOL.md, "HTTP/2"): each request is
/// `POST /baton/v1/<operation>` with `content-type: application/x-baton`; the request body is the
/// message body of the TCP protocol (the bytes after the 10-byte frame header), and so is the reply's.
public enum HTTP2Route {
    public static let pathPrefix = "/baton/v1/"
    public static let contentType = "application/x-baton"
    /// Request header carrying the client id as hex; commands need it for retry deduplication.
    public static let clientIDHeader = "baton-client-id"
    /// Response header naming the error code of an error reply (`STALE_TOKEN`).
    public static let errorHeader = "baton-error"
    /// Response header of a NOT_LEADER answer naming the leader's HTTP/2 `host:port`, when it is known
    /// (the cluster's configuration gives each member's `http2Port`).
    public static let leaderHeader = "baton-leader"
    /// Bodies travel as protocol version 2 lays them out, whatever HELLO agreed: a stream has no
    /// HELLO of its own to say which version it speaks. What a later version adds travels in headers.
    public static let bodyVersion: UInt16 = 2

    /// The operation's path: the opcode's name in lower case (`/baton/v1/lock_acquire`).
    public static func path(_ opcode: Opcode) -> String { pathPrefix + opcode.name.lowercased() }

    /// The request opcode a path names, if any; a query string is ignored.
    public static func opcode(path: Substring) -> Opcode? {
        let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? path
        return byPath[String(bare)]
    }

    private static let byPath: [String: Opcode] = Dictionary(uniqueKeysWithValues: Opcode.requests.map { (path($0), $0) })
}
