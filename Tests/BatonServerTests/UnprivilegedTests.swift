import BatonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(1))) struct UnprivilegedTests {
    /// A node, batonctl and the client library inside it, all without privileges: a socket option
    /// that needs one (SO_DEBUG, which `.socketOption(.tcp_nodelay)` sets) resets every connection.
    @Test func aNodeAndBatonctlWorkWithoutPrivileges() async throws {
        if Unprivileged.isRoot {
            let probe = try Unprivileged.process("baton", ["--help"])
            #expect(probe.executableURL?.path == "/usr/bin/setpriv", "the node must not run as root")
        }
        let port = try await freePort()
        let node = try launchNode(["dev", "--port", "\(port)", "--no-metrics", "--log-level", "error"])
        defer {
            kill(node.processIdentifier, SIGKILL)
            node.waitUntilExit()
        }
        // The node is up once its port accepts; batonctl then must get its answers.
        try await waitUntilListening(node, port: port)
        let status = try await batonctl(["status"], port: port)
        #expect(status.status == 0, "batonctl status: \(status.err)")
        #expect(status.out.contains("standalone"))
        let add = try await batonctl(["jobs", "add", "--type", "thumbnail"], port: port)
        #expect(add.status == 0, "batonctl jobs add: \(add.err)")
        let list = try await batonctl(["jobs", "list"], port: port)
        #expect(list.status == 0 && list.out.contains("thumbnail"), "batonctl jobs list: \(list.out) \(list.err)")
        // baton-bench opens its own connections (BatonBenchKit).
        let bench = try await built(
            "baton-bench", ["load", "--endpoint", "127.0.0.1:\(port)", "--connections", "2", "--duration", "0.3", "--warmup", "0.1", "--json"])
        let report = (try? json(bench.out)) as? [String: Any]
        #expect(bench.status == 0 && report?["errors"] as? Int == 0 && (report?["cycles"] as? Int ?? 0) > 0, "baton-bench: \(bench.out) \(bench.err)")
    }
}
