import BatonProtocol

/// The rules a client's requests follow, the same on TCP and HTTP/2: the protocol version, who the
/// client is, and what each request becomes. A value: the connection handlers keep only framing and
/// carry out what it decides.
///
/// On TCP the client says who it is once, with HELLO, for the whole connection. On HTTP/2 each
/// stream is one request, and a command names its client in the `baton-client-id` header
/// (PROTOCOL.md §12); HELLO there only checks the version and registers the client.
struct ClientSession {
    /// How requests name their client.
    enum Identity {
        /// HELLO names the client for the whole connection (TCP); nothing but HELLO and PING before it.
        case perConnection
        /// Each request names its client (HTTP/2's header); queries need none.
        case perRequest
    }

    /// What a request becomes.
    enum Decision: Equatable {
        /// Answer HELLO. `client` joined this connection (it said HELLO here for the first time);
        /// `left` stopped speaking on it (a second HELLO named another client).
        case hello(joined: ClientID?, left: ClientID?)
        case ping
        /// Answer from the node's state (linearizable on the leader).
        case read(Query)
        /// Run through the log for `client`; `joined` is set when the client is new on this connection.
        case command(ClientID, SequenceNumber, Command, joined: Bool)
        /// Answer with this error and carry on.
        case refuse(ErrorCode, String)
        /// Answer with this error and close the connection (a version this node does not speak).
        case refuseAndClose(ErrorCode, String)
    }

    let identity: Identity
    /// The client of this connection (TCP), once it said HELLO.
    private(set) var client: ClientID?
    /// Every client that spoke on this connection; each is detached when it closes.
    private(set) var clients: Set<ClientID> = []

    init(identity: Identity) {
        self.identity = identity
    }

    /// Decides what `request` becomes. `named` is the client a request names itself (HTTP/2's header).
    mutating func receive(_ request: Request, opcode: Opcode, named: ClientID? = nil) -> Decision {
        switch request {
        case .hello(let hello):
            guard hello.version == batonProtocolVersion else {
                let message = "protocol version \(hello.version) is not supported; this node speaks \(batonProtocolVersion)"
                return identity == .perConnection
                    ? .refuseAndClose(.unsupportedVersion, message) : .refuse(.unsupportedVersion, message)
            }
            let joined = clients.insert(hello.clientID).inserted ? hello.clientID : nil
            var left: ClientID?
            if identity == .perConnection, let old = client, old != hello.clientID {
                clients.remove(old)
                left = old
            }
            if identity == .perConnection { client = hello.clientID }
            return .hello(joined: joined, left: left)
        case .ping:
            return .ping
        case .query(let query):
            if identity == .perConnection, client == nil { return .refuse(.helloRequired, "send HELLO before \(opcode)") }
            return .read(query)
        case .command(let sequence, let command):
            switch identity {
            case .perConnection:
                guard let client else { return .refuse(.helloRequired, "send HELLO before \(opcode)") }
                return .command(client, sequence, command, joined: false)
            case .perRequest:
                guard let named else { return .refuse(.helloRequired, "commands need the \(HTTP2Route.clientIDHeader) header") }
                return .command(named, sequence, command, joined: clients.insert(named).inserted)
            }
        }
    }
}
