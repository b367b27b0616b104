import BatonClient
import BatonProtocol
import BatonTestSupport
import BatonRaft
import Foundation
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import NIOSSL
import Testing

@testable import BatonServer

/// Three `baton serve` processes, run as the unprivileged user, configured as `deploy/three-hosts`
/// is: TLS to clients, mutual TLS between members and authentication, from what
/// `deploy/make-certs.sh` makes (here for 127.0.0.1). A rogue process, with a self-signed
/// certificate, a certificate of the cluster's CA that names no member, or a member's stolen
/// certificate used to speak for another, cannot join; a client without the CA or a token reads
/// nothing; and the cluster serves all along (issue 20).
@Suite(.heavy, .timeLimit(.minutes(3))) struct SecuredClusterTests {
    struct Member {
        var name: String
        var port: Int
        var raftPort: Int
        var config: String
    }

    let directory = temporaryDataDirectory()
    var etc: String { directory + "/etc" }

    func root() -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The certificates, the token, and three members' files, as deploy/three-hosts has them.
    func prepare() async throws -> [Member] {
        try Unprivileged.makeDirectory(directory)
        chmod(directory, 0o755)
        let made = try runTool(root().appendingPathComponent("deploy/make-certs.sh").path, [etc, "127.0.0.1", "127.0.0.1", "127.0.0.1"])
        #expect(made.status == 0, "make-certs.sh: \(made.output)")
        chmod(etc, 0o755)
        for file in try FileManager.default.contentsOfDirectory(atPath: etc) { Unprivileged.handOver("\(etc)/\(file)") }
        var members: [Member] = []
        for i in 1...3 {
            members.append(Member(name: "baton-\(i)", port: try await freePort(), raftPort: try await freePort(), config: "\(directory)/baton-\(i).json"))
        }
        let cluster = members.map { "{\"nodeID\": \"\($0.name)\", \"host\": \"127.0.0.1\", \"port\": \($0.port), \"raftPort\": \($0.raftPort)}" }
        for m in members {
            let data = "\(directory)/\(m.name)"
            try Unprivileged.makeDirectory(data)
            let json = """
                {"nodeID": "\(m.name)", "port": \(m.port), "dataDirectory": "\(data)", "metricsPort": 0,
                 "tls": {"certificateFile": "\(etc)/\(m.name).pem", "keyFile": "\(etc)/\(m.name)-key.pem"},
                 "peerTLS": {"certificateFile": "\(etc)/\(m.name).pem", "keyFile": "\(etc)/\(m.name)-key.pem", "caFile": "\(etc)/ca.pem"},
                 "auth": {"adminTokenFile": "\(etc)/admin.token"},
                 "cluster": [\(cluster.joined(separator: ", "))]}
                """
            try json.write(toFile: m.config, atomically: true, encoding: .utf8)
            Unprivileged.handOver(m.config)
        }
        return members
    }

    func launch(_ m: Member) throws -> Process {
        try launchNode(["serve", "--config", m.config, "--log-level", "warning"], output: .appended(toFile: "\(directory)/\(m.name).log"))
    }

    func log(_ m: Member) -> String { (try? String(contentsOfFile: "\(directory)/\(m.name).log", encoding: .utf8)) ?? "" }

    func client(_ members: [Member], ca: String?, token: String?) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: members.map { "127.0.0.1:\($0.port)" }, name: "secured")
        c.tls = ca.map { BatonClient.TLS(caFile: $0) }
        c.token = token
        c.retryTimeout = .seconds(2)
        return BatonClient(configuration: c)
    }

    /// A rogue's TLS connection to a raft port, with the certificate it has: it sends the peer
    /// preamble and then `message`, and reports what came back before the member closed it.
    func rogue(port: Int, certificate: String, key: String, message: RaftEnvelope? = nil) async throws -> (bytes: Int, error: String?) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        tls.certificateVerification = .none  // the rogue trusts anyone; the member must not
        let context = try NIOSSLContext(configuration: tls)
        // Let in, a rogue would get the preamble's answer and then nothing: with no message to send,
        // the answer is enough to tell.
        let received = ByteCounter(enough: message == nil ? PeerPreamble.size : .max)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([NIOSSLClientHandler(context: context, serverHostname: nil), received])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var bytes = channel.allocator.buffer(capacity: 64)
        PeerPreamble.write(into: &bytes)
        message?.encode(into: &bytes)
        try? await channel.writeAndFlush(bytes)
        // The member closes the connection, or answers a rogue it let in: that is what is awaited (a
        // member that took a forged message and kept the connection open would run into the suite's
        // time limit).
        try? await received.settled.futureResult.get()
        try? await channel.close()
        return (received.count.withLockedValue { $0 }, received.error.withLockedValue { $0 })
    }

    @Test func aRogueCannotJoinOrRead() async throws {
        let members = try await prepare()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let processes = try members.map(launch)
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let token = try String(contentsOfFile: "\(etc)/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = client(members, ca: "\(etc)/ca.pem", token: token)
        defer { Task { await admin.shutdown() } }
        // The members meet over mutual TLS and elect.
        do {
            try await eventually("the secured cluster serves", every: .milliseconds(100)) {
                (try? await admin.addJob(JobSpec(type: "secured"))) != nil
            }
        } catch {
            Issue.record("the members' logs: \(members.map(log))")
            throw error
        }

        // Certificates a rogue may have: its own (self-signed), and one of the cluster's CA for a
        // name that is no member's (a worker's client certificate, say).
        let made = try runTool("/bin/sh", ["-c", """
            set -e; cd '\(etc)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=baton-1 \
              -addext subjectAltName=DNS:baton-1 -keyout self-key.pem -out self.pem 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=worker -keyout worker-key.pem -out worker.csr 2>/dev/null
            printf 'subjectAltName=DNS:worker\\nextendedKeyUsage=clientAuth,serverAuth\\n' > worker.ext
            openssl x509 -req -in worker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile worker.ext -out worker.pem 2>/dev/null
            """])
        #expect(made.status == 0, "\(made.output)")
        let target = members[0]
        let selfSigned = try await rogue(port: target.raftPort, certificate: "\(etc)/self.pem", key: "\(etc)/self-key.pem")
        #expect(selfSigned.bytes == 0, "a self-signed peer got an answer")
        let worker = try await rogue(port: target.raftPort, certificate: "\(etc)/worker.pem", key: "\(etc)/worker-key.pem")
        #expect(worker.bytes == 0, "a peer whose certificate names no member got an answer")
        // baton-2's own certificate, speaking for baton-3: the preamble is answered (6 bytes), the
        // message closes the connection.
        let forged = RaftEnvelope(from: NodeIndex(3), to: NodeIndex(1), term: Term(1_000_000), message: .heartbeatReply(round: 1, syncing: false))
        // baton-2's name, from the cluster's CA, but expired in 2020.
        let expired = try runTool("/bin/sh", ["-c", """
            set -e; cd '\(etc)'
            rm -rf db && mkdir db && touch db/index.txt && echo 01 > db/serial
            printf '[ca]\\ndefault_ca=x\\n[x]\\ndir=db\\ndatabase=db/index.txt\\nnew_certs_dir=db\\nserial=db/serial\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > old.cnf
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=baton-2 -addext subjectAltName=DNS:baton-2 \\
              -addext extendedKeyUsage=serverAuth,clientAuth -keyout old-key.pem -out old.csr 2>/dev/null
            openssl ca -batch -config old.cnf -cert ca.pem -keyfile ca-key.pem -in old.csr -startdate 20200101000000Z \\
              -enddate 20200102000000Z -out old.pem 2>/dev/null
            """])
        #expect(expired.status == 0, "\(expired.output)")
        let old = try await rogue(port: target.raftPort, certificate: "\(etc)/old.pem", key: "\(etc)/old-key.pem")
        #expect(old.bytes == 0, "a peer with an expired certificate got an answer")
        let stolen = try await rogue(port: target.raftPort, certificate: "\(etc)/baton-2.pem", key: "\(etc)/baton-2-key.pem", message: forged)
        #expect(stolen.bytes == PeerPreamble.size, "a member's certificate spoke for another: \(stolen.bytes) bytes back")
        let refusals = log(target)
        #expect(refusals.contains("peer TLS failed") || refusals.contains("refused a peer connection"), "\(refusals)")
        #expect(refusals.contains("names no member"), "\(refusals)")
        #expect(refusals.contains("a message from member 3 on the connection of member 2"), "\(refusals)")

        // A client that does not trust the cluster's CA does not connect; one without a token reads nothing.
        let untrusting = client(members, ca: "\(etc)/self.pem", token: token)
        defer { Task { await untrusting.shutdown() } }
        await #expect(throws: BatonClientError.self) { _ = try await untrusting.listJobs() }
        let anonymous = client(members, ca: "\(etc)/ca.pem", token: nil)
        defer { Task { await anonymous.shutdown() } }
        do {
            _ = try await anonymous.listJobs()
            Issue.record("a client without a token listed the jobs")
        } catch BatonClientError.server(let e) {
            #expect(e.code == .unauthenticated || e.code == .notLeader, "\(e)")
        }
        // The forged term did not reach Raft: the cluster serves on, in its own term.
        _ = try await admin.addJob(JobSpec(type: "secured"))
        let status = try await admin.nodeStatus()
        #expect(status.term < 1_000_000)
    }
}

/// Counts the bytes a connection receives, and the error that ended it; `settled` completes when the
/// connection closes or `enough` bytes came.
final class ByteCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let count = NIOLockedValueBox(0)
    let error = NIOLockedValueBox<String?>(nil)
    let enough: Int
    let settled = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
    init(enough: Int) { self.enough = enough }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let n = unwrapInboundIn(data).readableBytes
        if count.withLockedValue({ $0 += n; return $0 }) >= enough { settled.succeed() }
    }
    func channelInactive(context: ChannelHandlerContext) {
        settled.succeed()
        context.fireChannelInactive()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error.withLockedValue { $0 = "\(error)" }
        context.close(promise: nil)
    }
}
