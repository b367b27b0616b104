import BatonCore
import BatonProtocol
import NIOCore

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
        /// Check the token, and on TCP let the connection speak as its user from here.
        case authenticate(token: String)
        /// Answer from the node's state (linearizable on the leader).
        case read(Query)
        /// Run through the log for `client`; `joined` is set when the client is new on this connection.
        case command(ClientID, SequenceNumber, Command, joined: Bool)
        /// Answer with this error and carry on.
        case refuse(ErrorCode, String)
        /// Answer with this error and close the connection (a version this node does not speak).
        case refuseAndClose(ErrorCode, String)
    }

    /// Reserved: no client. HELLO refuses it, as HTTP/2's `baton-client-id` header does.
    static let noClient = ClientID(0)

    let identity: Identity
    /// The protocol version agreed by the last HELLO (TCP: how replies are laid out; before HELLO, the
    /// oldest). HTTP/2 lays bodies out as version 2 whatever HELLO agreed (PROTOCOL.md §12).
    private(set) var version = batonProtocolVersions.lowerBound
    /// The client of this connection (TCP), once it said HELLO.
    private(set) var client: ClientID?
    /// Every client that spoke on this connection; each is detached when it closes.
    private(set) var clients: Set<ClientID> = []
    /// Who the connection proved to be with AUTH (TCP); nil before, or after a refused AUTH.
    var principal: Principal?

    init(identity: Identity) {
        self.identity = identity
    }

    /// Decodes a request's body and decides what it becomes (see `receive(_:opcode:named:)`), with the
    /// request when it decoded. On TCP, before HELLO, everything but HELLO and PING is refused with
    /// `HELLO_REQUIRED` whatever its opcode or body (PROTOCOL.md §4); otherwise a body that does not
    /// decode is refused with its error (`UNKNOWN_OPCODE`, `MALFORMED_FRAME`, `INVALID_ARGUMENT`).
    mutating func receive(opcode: Opcode, body: ByteBuffer, named: ClientID? = nil) -> (Decision, Request?) {
        if identity == .perConnection, client == nil, opcode != .hello, opcode != .ping {
            return (.refuse(.helloRequired, "send HELLO before \(opcode)"), nil)
        }
        let request: Request
        do {
            request = try Request.decode(opcode: opcode, body: body)
        } catch {
            return (.refuse(error.code, error.message), nil)
        }
        return (receive(request, opcode: opcode, named: named), request)
    }

    /// Decides what `request` becomes. `named` is the client a request names itself (HTTP/2's header).
    mutating func receive(_ request: Request, opcode: Opcode, named: ClientID? = nil) -> Decision {
        switch request {
        case .hello(let hello):
            guard hello.clientID != ClientSession.noClient else {
                return .refuse(.invalidArgument, "client id 0 is reserved: pick a random non-zero 64-bit id")
            }
            let agreed = min(hello.version, batonProtocolVersions.upperBound)
            guard batonProtocolVersions.contains(agreed) else {
                let message =
                    "protocol version \(hello.version) is not supported; this node speaks \(batonProtocolVersions.lowerBound)...\(batonProtocolVersions.upperBound)"
                return identity == .perConnection
                    ? .refuseAndClose(.unsupportedVersion, message) : .refuse(.unsupportedVersion, message)
            }
            version = agreed
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
        case .auth(let token):
            if identity == .perConnection, client == nil { return .refuse(.helloRequired, "send HELLO before \(opcode)") }
            return .authenticate(token: token)
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
