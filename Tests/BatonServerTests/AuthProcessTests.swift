import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import Testing

@testable import BatonServer

#if canImport(Glibc)
import Glibc
#endif

/// A `baton serve` process with authentication on, run as the unprivileged user: its admin token
/// file, a data directory, a client port, an HTTP/2 port and a metrics port of its own.
final class AuthNode {
    let directory: String
    let port: Int
    let http2Port: Int
    let metricsPort: Int
    private(set) var adminToken: String
    private var process: Process?
    /// With TLS: the CA clients trust (the node's certificate chains to it).
    let ca: String?
    /// The client certificate the admin's client shows, for a node that asks for one.
    private(set) var adminCertificate: (file: String, key: String)?

    /// `tls`: the node's certificate and key and, optionally, the CA its clients' certificates must
    /// chain to; `ca`: the CA clients trust.
    /// `extra`: more configuration keys, as JSON members (`"limits": {...}`).
    init(tls: ClientTLS? = nil, ca: String? = nil, extra: String = "") async throws {
        self.ca = ca
        directory = temporaryDataDirectory()
        try Unprivileged.makeDirectory(directory)
        chmod(directory, 0o755)
        port = try await freePort()
        http2Port = try await freePort()
        metricsPort = try await freePort()
        adminToken = TokenHash.newToken()
        try writeAdminToken(adminToken)
        var tlsKey = ""
        if let tls {
            tlsKey = ", \"tls\": {\"certificateFile\": \"\(tls.certificateFile)\", \"keyFile\": \"\(tls.keyFile)\""
                + (tls.clientCAFile.map { ", \"clientCAFile\": \"\($0)\"" } ?? "") + "}"
        }
        let config = """
            {"nodeID": "auth-1", "port": \(port), "http2Port": \(http2Port), "metricsPort": \(metricsPort),
             "dataDirectory": "\(directory)/data", "sync": "none",
             "auth": {"adminTokenFile": "\(directory)/admin.token"}\(tlsKey)\(extra.isEmpty ? "" : ", " + extra)}
            """
        try config.write(toFile: "\(directory)/baton.json", atomically: true, encoding: .utf8)
        Unprivileged.handOver("\(directory)/baton.json")
    }

    /// Writes the admin token file as an operator would: readable by the node's user alone.
    func writeAdminToken(_ token: String) throws {
        adminToken = token
        let path = "\(directory)/admin.token"
        try (token + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        Unprivileged.handOver(path)
    }

    /// Starts the node and waits until the admin token works (the bootstrap entry is applied);
    /// `certificate`: the client certificate a node that asks for one is shown; `descriptorLimit`:
    /// the node's RLIMIT_NOFILE, soft and hard (prlimit).
    func start(certificate: (file: String, key: String)? = nil, descriptorLimit: Int? = nil) async throws {
        let p = try launchNode(
            ["serve", "--config", "\(directory)/baton.json", "--log-level", "notice"], output: .appended(toFile: "\(directory)/baton.log"),
            descriptorLimit: descriptorLimit)
        process = p
        let admin = client(token: adminToken, retryTimeout: .milliseconds(200), certificate: certificate ?? adminCertificate)
        adminCertificate = certificate ?? adminCertificate
        defer { Task { await admin.shutdown() } }
        try await eventually("the admin token works", every: .milliseconds(10)) {
            try #require(p.isRunning, "baton exited: \(output())")
            return (try? await admin.nodeStatus()) != nil
        }
    }

    func stop() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        process = nil
    }

    func destroy() {
        if let p = process { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What the node wrote, over all its runs.
    func output() -> String {
        (try? String(contentsOfFile: "\(directory)/baton.log", encoding: .utf8)) ?? ""
    }

    var endpoint: String { "127.0.0.1:\(port)" }

    func client(
        token: String?, transport: BatonClient.Transport = .tcp, retryTimeout: Duration = .seconds(2),
        certificate: (file: String, key: String)? = nil
    ) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(transport == .tcp ? port : http2Port)"], name: "auth-test")
        c.token = token
        if let ca { c.tls = BatonClient.TLS(caFile: ca, certificateFile: certificate?.file, keyFile: certificate?.key) }
        c.transport = transport
        c.retryTimeout = retryTimeout
        c.requestTimeout = .seconds(5)
        return BatonClient(configuration: c)
    }

    /// A user with one role granting `permissions`, made by the admin; returns its token.
    func user(_ name: String, _ permissions: [Permission]) async throws -> String {
        let admin = client(token: adminToken, certificate: adminCertificate)
        defer { Task { await admin.shutdown() } }
        try await admin.addRole(name + "-role")
        for p in permissions { try await admin.grant(p, to: name + "-role") }
        try await admin.addUser(name)
        try await admin.grantRole(name + "-role", to: name)
        return try await admin.addToken(for: name).token
    }

    /// The value of one counter sample, from the node's /metrics.
    func counter(_ name: String, _ labels: [String: String]) async throws -> Double {
        let (_, body) = try await httpGet(port: metricsPort, path: "/metrics")
        return try parseExposition(body).samples.first { $0.name == name && $0.labels == labels }?.value ?? 0
    }
}

func withAuthNode(_ body: (AuthNode) async throws -> Void) async throws {
    let node = try await AuthNode()
    defer { node.destroy() }
    try await node.start()
    try await body(node)
}

/// The server error a call failed with, or nil when it succeeded.
func serverError(_ call: () async throws -> Void) async -> ErrorReply? {
    do {
        try await call()
        return nil
    } catch BatonClientError.server(let e) {
        return e
    } catch {
        Issue.record("failed otherwise: \(error)")
        return nil
    }
}

/// Authentication and permissions against a real node (issue 20): each bad input gets a clear error
/// and leaves the node serving others.
@Suite(.timeLimit(.minutes(3))) struct AuthProcessTests {
    @Test func requestsWithoutAKnownTokenAreRefusedAndTheConnectionCarriesOn() async throws {
        try await withAuthNode { node in
            let raw = try await RawConnection(port: node.port)
            defer { Task { await raw.close() } }
            try await raw.send(.auth(token: node.adminToken), id: 2)
            #expect(errorCode(try await raw.nextReply().reply) == .helloRequired)
            try await raw.hello()
            try await raw.send(.command(SequenceNumber(1), .addJob(JobSpec(type: "t"))), id: 3)
            #expect(errorCode(try await raw.nextReply().reply) == .unauthenticated)
            try await raw.send(.query(.nodeStatus), id: 4)
            #expect(errorCode(try await raw.nextReply().reply) == .unauthenticated)
            try await raw.send(.auth(token: "wrong-" + node.adminToken), id: 5)
            #expect(errorCode(try await raw.nextReply().reply) == .unauthenticated)
            try await raw.send(.command(SequenceNumber(1), .addJob(JobSpec(type: "t"))), id: 6)
            #expect(errorCode(try await raw.nextReply().reply) == .unauthenticated)
            // A token longer than any the node hashes is refused unread.
            try await raw.send(.auth(token: String(repeating: "x", count: 5000)), id: 7)
            let long = try await raw.nextReply().reply
            #expect(errorCode(long) == .invalidArgument, "\(long)")
            try await raw.send(.ping, id: 8)
            guard case .pong = try await raw.nextReply().reply else { Issue.record("no pong"); return }
            try await raw.send(.auth(token: node.adminToken), id: 9)
            #expect(try await raw.nextReply().reply == .authenticated(user: "root"))
            try await raw.send(.command(SequenceNumber(1), .addJob(JobSpec(type: "t"))), id: 10)
            guard case .jobAdded = try await raw.nextReply().reply else { Issue.record("root's add refused"); return }
            // The client library says why: the token, at connect.
            let wrong = node.client(token: "nope-" + node.adminToken)
            defer { Task { await wrong.shutdown() } }
            #expect(await serverError { _ = try await wrong.addJob(JobSpec(type: "t")) }?.code == .unauthenticated)
            let none = node.client(token: nil)
            defer { Task { await none.shutdown() } }
            #expect(await serverError { _ = try await none.addJob(JobSpec(type: "t")) }?.code == .unauthenticated)
        }
    }

    @Test func aUserMayDoWhatItsRoleGrantsAndIsToldWhatItLacks() async throws {
        try await withAuthNode { node in
            let token = try await node.user("thumbs", [Permission(.job, [.write, .work, .read], "thumbnail")])
            let thumbs = node.client(token: token)
            defer { Task { await thumbs.shutdown() } }
            _ = try await thumbs.addJob(JobSpec(type: "thumbnail"))
            let job = try await thumbs.claimJob(types: ["thumbnail"])
            #expect(job != nil)
            let billing = await serverError { _ = try await thumbs.claimJob(types: ["billing"]) }
            #expect(billing?.code == .permissionDenied && billing?.message.contains("job:work:billing") == true, "\(String(describing: billing))")
            let force = await serverError { _ = try await thumbs.forceReleaseLock("reports/daily") }
            #expect(force?.code == .permissionDenied && force?.message.contains("cluster:admin") == true, "\(String(describing: force))")
            let leases = await serverError { _ = try await thumbs.listLeases() }
            #expect(leases?.code == .permissionDenied)
            #expect(await serverError { _ = try await thumbs.nodeStatus() }?.code == .permissionDenied)
            // The audit log: the refusal and the admin's changes, with user, client and peer.
            let log = node.output()
            let refusal = log.split(separator: "\n").first { $0.contains("request refused: user 'thumbs' lacks job:work:billing") }
            #expect(refusal.map { $0.contains("user=thumbs") && $0.contains("client.id=") && $0.contains("peer=") } == true, "\(log)")
            #expect(log.contains("admin operation applied") && log.contains("op=ROLE_ADD") && log.contains("user=root"), "\(log)")
            // Over HTTP/2 the token travels in the authorization header, with the same rules.
            let h2 = node.client(token: token, transport: .http2)
            defer { Task { await h2.shutdown() } }
            _ = try await h2.addJob(JobSpec(type: "thumbnail"))
            #expect(await serverError { _ = try await h2.addJob(JobSpec(type: "billing")) }?.code == .permissionDenied)
            let h2none = node.client(token: nil, transport: .http2)
            defer { Task { await h2none.shutdown() } }
            #expect(await serverError { _ = try await h2none.addJob(JobSpec(type: "thumbnail")) }?.code == .unauthenticated)
            let h2wrong = node.client(token: "wrong-token-" + token, transport: .http2)
            defer { Task { await h2wrong.shutdown() } }
            #expect(await serverError { _ = try await h2wrong.addJob(JobSpec(type: "thumbnail")) }?.code == .unauthenticated)
        }
    }

    /// A deleted user's token is refused at AUTH, and a connection that authenticated with it before is
    /// refused from the deletion on; a removed token likewise.
    @Test func aDeletedUserOrRemovedTokenStopsWorkingAtOnce() async throws {
        try await withAuthNode { node in
            let token = try await node.user("gone", [Permission(.job, .write, "*")])
            let connected = node.client(token: token)
            defer { Task { await connected.shutdown() } }
            _ = try await connected.addJob(JobSpec(type: "t"))
            let admin = node.client(token: node.adminToken)
            defer { Task { await admin.shutdown() } }
            try await admin.deleteUser("gone")
            #expect(await serverError { _ = try await connected.addJob(JobSpec(type: "t")) }?.code == .unauthenticated)
            let fresh = node.client(token: token)
            defer { Task { await fresh.shutdown() } }
            #expect(await serverError { _ = try await fresh.addJob(JobSpec(type: "t")) }?.code == .unauthenticated)

            // Rotation without downtime: a second token, then the first removed.
            let first = try await node.user("rotating", [Permission(.job, .write, "*")])
            let (second, _) = try await admin.addToken(for: "rotating")
            let old = node.client(token: first)
            let new = node.client(token: second)
            defer { Task { await old.shutdown(); await new.shutdown() } }
            _ = try await old.addJob(JobSpec(type: "t"))
            _ = try await new.addJob(JobSpec(type: "t"))
            let listing = try await admin.authListing()
            let ids = try #require(listing.users.first { $0.name == "rotating" }?.tokens)
            #expect(ids.count == 2)
            try await admin.removeToken(TokenHash(of: first).id, of: "rotating")
            #expect(await serverError { _ = try await old.addJob(JobSpec(type: "t")) }?.code == .unauthenticated)
            _ = try await new.addJob(JobSpec(type: "t"))
        }
    }

    /// 10,000 refused AUTHs in a row on one connection: another client is served all along, and the
    /// failures are counted.
    @Test func tenThousandFailedAttemptsLeaveTheNodeServingOthers() async throws {
        try await withAuthNode { node in
            let before = try await node.counter("baton_auth_failures_total", ["reason": "unknown_token"])
            let raw = try await RawConnection(port: node.port)
            defer { Task { await raw.close() } }
            try await raw.hello()
            let admin = node.client(token: node.adminToken)
            defer { Task { await admin.shutdown() } }
            var served = 0
            for batch in 0..<100 {
                var frames = ByteBuffer()
                for i in 0..<100 {
                    frames.writeRequest(.auth(token: "guess-\(batch)-\(i)-" + node.adminToken), requestID: RequestID(UInt32(2 + batch * 100 + i)))
                }
                try await raw.send(frames)
                _ = try await admin.addJob(JobSpec(type: "meanwhile"))
                served += 1
                for _ in 0..<100 {
                    let r = try await raw.nextReply().reply
                    guard errorCode(r) == .unauthenticated else { Issue.record("a guess got \(r)"); return }
                }
            }
            #expect(served == 100)
            let after = try await node.counter("baton_auth_failures_total", ["reason": "unknown_token"])
            #expect(after - before == 10_000, "counted \(after - before)")
        }
    }

    /// batonctl manages users, roles and tokens, with --token or BATON_TOKEN, as the unprivileged user.
    @Test func batonctlManagesUsersRolesAndTokens() async throws {
        try await withAuthNode { node in
            let env = ["BATON_ENDPOINTS": node.endpoint, "BATON_TOKEN": node.adminToken]
            let role = try await built("batonctl", ["role", "add", "thumbnailer", "job:add,work:thumbnail", "lock:write:thumbs/*"], environment: env)
            #expect(role.status == 0, "\(role.err)")
            let add = try await built("batonctl", ["user", "add", "thumbs", "--role", "thumbnailer", "--output", "json"], environment: env)
            #expect(add.status == 0, "\(add.err)")
            let token = try #require((try json(add.out) as? [String: Any])?["token"] as? String)
            let list = try await built("batonctl", ["user", "list"], environment: env)
            #expect(list.status == 0 && list.out.contains("thumbs") && list.out.contains("thumbnailer"), "\(list.out) \(list.err)")
            #expect(!list.out.contains(token), "a token was listed")
            let roles = try await built("batonctl", ["role", "list"], environment: env)
            #expect(roles.out.contains("job:add,work:thumbnail") && roles.out.contains("lock:write:thumbs/*"), "\(roles.out)")
            let asUser = try await built("batonctl", ["jobs", "add", "--type", "thumbnail", "--token", token, "--endpoints", node.endpoint])
            #expect(asUser.status == 0, "\(asUser.err)")
            let denied = try await built("batonctl", ["jobs", "add", "--type", "billing", "--token", token, "--endpoints", node.endpoint])
            #expect(denied.status == 1 && denied.err.contains("PERMISSION_DENIED") && denied.err.contains("job:add:billing"), "\(denied.err)")
            let anonymous = try await built("batonctl", ["status", "--endpoints", node.endpoint])
            #expect(anonymous.status == 1 && anonymous.err.contains("UNAUTHENTICATED") && anonymous.err.contains("--token"), "\(anonymous.err)")
            let badPermission = try await built("batonctl", ["role", "grant", "thumbnailer", "job:fly:x"], environment: env)
            #expect(badPermission.status == 2, "\(badPermission.err)")
        }
    }

    /// The way back in when the admin token is lost: a new token in the file, a restart, and the old
    /// token is refused while the new one is root's.
    @Test func aNewAdminTokenFileReplacesALostOne() async throws {
        try await withAuthNode { node in
            let lost = node.adminToken
            let token = try await node.user("keeps", [Permission(.job, .write, "*")])
            node.stop()
            try node.writeAdminToken(TokenHash.newToken())
            try await node.start()
            let old = node.client(token: lost)
            defer { Task { await old.shutdown() } }
            #expect(await serverError { _ = try await old.nodeStatus() }?.code == .unauthenticated)
            let user = node.client(token: token)  // other users are untouched, across the restart
            defer { Task { await user.shutdown() } }
            _ = try await user.addJob(JobSpec(type: "t"))
        }
    }

    @Test func anAdminTokenFileThatCannotBeUsedIsNamed() async throws {
        let node = try await AuthNode()
        defer { node.destroy() }
        try node.writeAdminToken("short")
        let err = Pipe()
        let p = try launchNode(["serve", "--config", "\(node.directory)/baton.json"], output: .pipe(err))
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus != 0 && text.contains("auth.adminTokenFile") && text.contains("at least 32"), "\(text)")
    }

    /// With client certificates required, a certificate proves its user by its common name, without a
    /// token, over TCP and HTTP/2: a certificate for `worker` is the user `worker`, with that user's
    /// permissions; a certificate naming no user is refused.
    @Test func aClientCertificateProvesItsUser() async throws {
        let certs = try TLSTests.Certificates.make()
        defer { certs.remove() }
        chmod(certs.directory, 0o755)
        for file in [certs.node, certs.nodeKey, certs.ca] { Unprivileged.handOver(file) }
        let node = try await AuthNode(tls: ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey, clientCAFile: certs.ca), ca: certs.ca)
        defer { node.destroy() }
        try await node.start(certificate: (certs.client, certs.clientKey))
        let worker = (file: certs.client, key: certs.clientKey)  // CN=worker
        let anonymous = node.client(token: nil, certificate: worker)
        defer { Task { await anonymous.shutdown() } }
        #expect(await serverError { _ = try await anonymous.addJob(JobSpec(type: "thumbnail")) }?.message.contains("which the client certificate names") == true)
        _ = try await node.user("worker", [Permission(.job, .write, "thumbnail")])
        let byCertificate = node.client(token: nil, certificate: worker)
        defer { Task { await byCertificate.shutdown() } }
        _ = try await byCertificate.addJob(JobSpec(type: "thumbnail"))
        #expect(await serverError { _ = try await byCertificate.addJob(JobSpec(type: "billing")) }?.code == .permissionDenied)
        let h2 = node.client(token: nil, transport: .http2, certificate: worker)
        defer { Task { await h2.shutdown() } }
        _ = try await h2.addJob(JobSpec(type: "thumbnail"))
        #expect(await serverError { _ = try await h2.addJob(JobSpec(type: "billing")) }?.code == .permissionDenied)
    }
}
