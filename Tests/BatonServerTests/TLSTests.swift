import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@testable import BatonServer

/// TLS on the client port (issue 20, first part): the client checks the node's certificate against
/// its CA and the endpoint's address, and a node with a client CA admits only clients with a
/// certificate from it. The certificates are made by openssl for each run.
@Suite(.timeLimit(.minutes(2))) struct TLSTests {
    /// A CA, a node certificate for 127.0.0.1 and localhost, a client certificate, and a second CA
    /// that signed none of them, in a fresh directory.
    struct Certificates {
        let directory: String
        var ca: String { directory + "/ca.pem" }
        var otherCA: String { directory + "/other-ca.pem" }
        var node: String { directory + "/node.pem" }
        var nodeKey: String { directory + "/node-key.pem" }
        var client: String { directory + "/client.pem" }
        var clientKey: String { directory + "/client-key.pem" }

        static func make() throws -> Certificates {
            let directory = temporaryDataDirectory()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let script = """
                set -e
                cd '\(directory)'
                for ca in ca other-ca; do
                  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$ca" \\
                    -keyout $ca-key.pem -out $ca.pem 2>/dev/null
                done
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=baton-1 -keyout node-key.pem -out node.csr 2>/dev/null
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > node.ext
                openssl x509 -req -in node.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile node.ext -out node.pem 2>/dev/null
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=worker -keyout client-key.pem -out client.csr 2>/dev/null
                printf 'extendedKeyUsage=clientAuth\\n' > client.ext
                openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out client.pem 2>/dev/null
                """
            let made = try runTool("/bin/sh", ["-c", script])
            guard made.status == 0 else { throw ClientTLSError("openssl failed (\(made.status)): \(made.output)") }
            return Certificates(directory: directory)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }

        /// A certificate of `ca` for `name` (DNS and 127.0.0.1) that expired in 2020, with its key,
        /// as `expired-<name>.pem` and `expired-<name>-key.pem`; made with `openssl ca`, which alone
        /// of OpenSSL 3.0's commands sets both dates.
        func expired(_ name: String, ca: String = "ca") throws -> (certificate: String, key: String) {
            let script = """
                set -e
                cd '\(directory)'
                rm -rf expired-db && mkdir expired-db && touch expired-db/index.txt && echo 01 > expired-db/serial
                printf '[ca]\\ndefault_ca=x\\n[x]\\ndir=expired-db\\ndatabase=expired-db/index.txt\\nnew_certs_dir=expired-db\\nserial=expired-db/serial\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > expired.cnf
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=\(name) \\
                  -addext 'subjectAltName=DNS:\(name),IP:127.0.0.1' -addext 'extendedKeyUsage=serverAuth,clientAuth' \\
                  -keyout expired-\(name)-key.pem -out expired-\(name).csr 2>/dev/null
                openssl ca -batch -config expired.cnf -cert \(ca).pem -keyfile \(ca)-key.pem -in expired-\(name).csr \\
                  -startdate 20200101000000Z -enddate 20200102000000Z -out expired-\(name).pem 2>/dev/null
                """
            let (status, output) = try runTool("/bin/sh", ["-c", script])
            guard status == 0 else { throw ClientTLSError("openssl ca failed (\(status)): \(output)") }
            return (directory + "/expired-\(name).pem", directory + "/expired-\(name)-key.pem")
        }
    }

    func client(_ port: Int, host: String = "127.0.0.1", tls: BatonClient.TLS?) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: ["\(host):\(port)"], name: "tls")
        c.tls = tls
        c.retryTimeout = .seconds(1)  // a refused handshake is not retried for long
        c.requestTimeout = .seconds(2)
        return BatonClient(configuration: c)
    }

    /// Sends one command; returns the error, or nil when it was answered.
    func failure(of client: BatonClient) async -> (any Error)? {
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.addJob(JobSpec(type: "tls"))
            return nil
        } catch {
            return error
        }
    }

    @Test func aClientThatTrustsTheCATalksToTheNode() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        try await withNode({ $0.tls = ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey) }) { node in
            for host in ["127.0.0.1", "localhost"] {  // the IP address, and the name, in the certificate
                let error = await failure(of: client(node.port, host: host, tls: BatonClient.TLS(caFile: certs.ca)))
                #expect(error == nil, "\(host): \(String(describing: error))")
            }
            // Not another CA's node, and not in plain text.
            #expect(await failure(of: client(node.port, tls: BatonClient.TLS(caFile: certs.otherCA))) != nil)
            #expect(await failure(of: client(node.port, tls: nil)) != nil)
        }
    }

    @Test func withAClientCANodeAdmitsOnlyClientsWithACertificateFromIt() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        try await withNode({ $0.tls = ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey, clientCAFile: certs.ca) }) { node in
            #expect(await failure(of: client(node.port, tls: BatonClient.TLS(caFile: certs.ca))) != nil)
            let error = await failure(
                of: client(node.port, tls: BatonClient.TLS(caFile: certs.ca, certificateFile: certs.client, keyFile: certs.clientKey)))
            #expect(error == nil, "\(String(describing: error))")
        }
    }

    /// batonctl takes TLS as etcdctl does: --cacert, --cert, --key, or BATON_CACERT, BATON_CERT and
    /// BATON_KEY; it runs as the unprivileged user, like every executable the tests start.
    @Test func batonctlSpeaksTLS() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        Unprivileged.handOver(certs.directory)
        for file in [certs.ca, certs.client, certs.clientKey] { Unprivileged.handOver(file) }
        try await withNode({ $0.tls = ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey, clientCAFile: certs.ca) }) { node in
            let endpoint = "127.0.0.1:\(node.port)"
            let flags = try await built(
                "batonctl", ["--cacert", certs.ca, "--cert", certs.client, "--key", certs.clientKey, "status", "--endpoints", endpoint])
            #expect(flags.status == 0, "\(flags.err)")
            let environment = try await built(
                "batonctl", ["locks", "list"],
                environment: ["BATON_ENDPOINTS": endpoint, "BATON_CACERT": certs.ca, "BATON_CERT": certs.client, "BATON_KEY": certs.clientKey])
            #expect(environment.status == 0, "\(environment.err)")
            let plain = try await built("batonctl", ["status", "--endpoints", endpoint])
            #expect(plain.status == 3, "a plain-TCP batonctl reached a TLS node: \(plain.out) \(plain.err)")
            let half = try await built("batonctl", ["status", "--endpoints", endpoint, "--cert", certs.client])
            #expect(half.status == 2 && half.err.contains("--cert and --key go together"), "\(half.err)")
        }
    }

    @Test func aTLSFileThatCannotBeReadIsNamed() throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        #expect(throws: ClientTLSError.self) { try ClientTLS(certificateFile: certs.directory + "/missing.pem", keyFile: certs.nodeKey).makeContext() }
        do {
            _ = try ClientTLS(certificateFile: certs.node, keyFile: certs.directory + "/missing-key.pem").makeContext()
            Issue.record("a missing key file was accepted")
        } catch let error as ClientTLSError {
            #expect(error.description.contains("tls.keyFile") && error.description.contains("missing-key.pem"))
        }
        let json = #"{"tls": {"certificateFile": "a.pem", "keyFile": "b.pem", "clientCAFile": "c.pem"}}"#
        #expect(try NodeConfiguration.decode(json: Data(json.utf8)).tls == ClientTLS(certificateFile: "a.pem", keyFile: "b.pem", clientCAFile: "c.pem"))
        // A misspelt key would turn client certificates off without a word: it is refused.
        let misspelt = #"{"tls": {"certificateFile": "a.pem", "keyFile": "b.pem", "clientCaFile": "c.pem"}}"#
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.decode(json: Data(misspelt.utf8)) }
    }

    /// The HTTP/2 port speaks h2 over TLS with the client port's certificate (ALPN h2); a cleartext
    /// HTTP/2 client gets nothing from it.
    @Test func theHTTP2PortSpeaksH2OverTLS() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        try await withNode({
            $0.tls = ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey)
            $0.http2Port = 0
        }) { node in
            let port = try #require(node.server.http2Port)
            var config = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "h2-tls")
            config.transport = .http2
            config.tls = BatonClient.TLS(caFile: certs.ca)
            config.retryTimeout = .seconds(1)
            let h2 = BatonClient(configuration: config)
            let error = await failure(of: h2)
            #expect(error == nil, "\(String(describing: error))")
            config.tls = nil
            #expect(await failure(of: BatonClient(configuration: config)) != nil)
        }
    }

    /// SIGHUP makes a node read its certificate again: after the files are replaced by a certificate
    /// of another CA, new connections get it, while a client of the old CA no longer connects.
    @Test func sighupReloadsTheCertificate() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        let directory = certs.directory
        chmod(directory, 0o755)
        let live = (cert: directory + "/live.pem", key: directory + "/live-key.pem")
        try FileManager.default.copyItem(atPath: certs.node, toPath: live.cert)
        try FileManager.default.copyItem(atPath: certs.nodeKey, toPath: live.key)
        let port = try await freePort()
        let config = directory + "/baton.json"
        try Unprivileged.makeDirectory(directory + "/data")
        try #"{"port": \#(port), "metricsPort": 0, "dataDirectory": "\#(directory)/data", "tls": {"certificateFile": "\#(live.cert)", "keyFile": "\#(live.key)"}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        for file in [config, live.cert, live.key] { Unprivileged.handOver(file) }
        let node = try launchNode(["serve", "--config", config, "--log-level", "error"])
        defer { kill(node.processIdentifier, SIGKILL); node.waitUntilExit() }
        // The node comes up, then takes the reload.
        try await eventually("the node serves TLS") {
            try #require(node.isRunning)
            return await failure(of: client(port, tls: BatonClient.TLS(caFile: certs.ca))) == nil
        }
        // A certificate of the other CA for the same names, written over the live files.
        let made = try runTool("/bin/sh", ["-c", """
            set -e; cd '\(directory)'
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=baton-1 -keyout next-key.pem -out next.csr 2>/dev/null
            openssl x509 -req -in next.csr -CA other-ca.pem -CAkey other-ca-key.pem -CAcreateserial -days 2 -extfile node.ext -out next.pem 2>/dev/null
            cat next.pem > live.pem; cat next-key.pem > live-key.pem
            """])
        #expect(made.status == 0, "\(made.output)")
        kill(node.processIdentifier, SIGHUP)
        try await eventually("SIGHUP brings in the new certificate") {
            try #require(node.isRunning)
            return await failure(of: client(port, tls: BatonClient.TLS(caFile: certs.otherCA))) == nil
        }
        #expect(await failure(of: client(port, tls: BatonClient.TLS(caFile: certs.ca))) != nil, "the old certificate is still served")
        #expect(node.isRunning)
    }

    /// An expired certificate is refused on either side: a node that serves one is not trusted, and
    /// a client that presents one to a node asking for client certificates is not let in.
    @Test func anExpiredCertificateIsRefused() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        let old = try certs.expired("localhost")
        try await withNode({ $0.tls = ClientTLS(certificateFile: old.certificate, keyFile: old.key) }) { node in
            let error = await failure(of: client(node.port, tls: BatonClient.TLS(caFile: certs.ca)))
            #expect("\(String(describing: error))".contains("TLS handshake failed"), "\(String(describing: error))")
        }
        try await withNode({ $0.tls = ClientTLS(certificateFile: certs.node, keyFile: certs.nodeKey, clientCAFile: certs.ca) }) { node in
            let expiredClient = BatonClient.TLS(caFile: certs.ca, certificateFile: old.certificate, keyFile: old.key)
            #expect(await failure(of: client(node.port, tls: expiredClient)) != nil)
            let good = BatonClient.TLS(caFile: certs.ca, certificateFile: certs.client, keyFile: certs.clientKey)
            #expect(await failure(of: client(node.port, tls: good)) == nil, "the node did not stay healthy")
        }
    }

    /// TLS sent to a plaintext port: the client is told, and the node serves plain clients on.
    @Test func tlsToAPlaintextPortFailsClearlyAndHarmsNoOne() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        try await withNode { node in
            let error = await failure(of: client(node.port, tls: BatonClient.TLS(caFile: certs.ca)))
            #expect(error != nil)
            #expect(await failure(of: client(node.port, tls: nil)) == nil, "a plain client was harmed")
        }
    }
}
