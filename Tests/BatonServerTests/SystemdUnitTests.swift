import BatonClient
import BatonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `deploy/systemd/baton.service` as an operator installs it: systemd accepts it, it carries the
/// hardening a careful operator adds, and its `ExecStart` serves clients and peers as its `User=`.
@Suite(.timeLimit(.minutes(1))) struct SystemdUnitTests {
    static let unitPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy/systemd/baton.service").path

    /// The value of each `Key=` line of the unit (the last one wins, as in systemd).
    static func settings() throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try String(contentsOfFile: unitPath, encoding: .utf8).split(separator: "\n") {
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return values
    }

    /// `systemd-analyze verify`, on a copy whose ExecStart names the built binary (verify insists that
    /// the binary exists, and the tests install nothing under /usr).
    @Test func systemdAcceptsTheUnit() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-unit-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let unit = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/baton", with: try batonExecutable().path)
        let copy = dir.appendingPathComponent("baton.service").path
        try unit.write(toFile: copy, atomically: true, encoding: .utf8)
        let (status, out) = try await offPool { try runTool("/usr/bin/systemd-analyze", ["verify", copy]) }
        #expect(status == 0 && out.isEmpty, "systemd-analyze verify: \(out)")
    }

    @Test func theUnitIsHardened() throws {
        let s = try Self.settings()
        #expect(s["User"] == "baton" && s["Group"] == "baton")
        #expect(s["NoNewPrivileges"] == "yes")
        #expect(s["ProtectSystem"] == "strict")
        #expect(s["ReadWritePaths"] == "/var/lib/baton" && s["StateDirectory"] == "baton")
        #expect(s["CapabilityBoundingSet"] == "" && s["AmbientCapabilities"] == "", "no capability at all")
        #expect(s["RestrictAddressFamilies"] == "AF_INET AF_INET6 AF_UNIX")
        // A node that cannot go on exits 1 (issue 34): the unit restarts it.
        #expect(s["Restart"] == "on-failure" || s["Restart"] == "always")
    }

    /// The unit's ExecStart, run as its User= (created for the test, and removed), serves a client
    /// and accepts peers. Run as an ordinary user, the test runs it as that user.
    @Test func execStartServesClientsAndPeersAsItsUser() async throws {
        let s = try Self.settings()
        let user = try #require(s["User"])
        let exec = try #require(s["ExecStart"]).split(separator: " ").map(String.init)
        #expect(exec.first == "/usr/local/bin/baton" && exec.dropFirst().first == "serve")
        var created = false
        if Unprivileged.isRoot, getpwnam(user) == nil {
            let added = try await offPool { try runTool("/usr/sbin/useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user]) }
            #expect(added.status == 0, "useradd: \(added.output)")
            created = true
        }
        defer { if created { _ = try? runTool("/usr/sbin/userdel", [user]) } }
        let (uid, gid) = Unprivileged.isRoot ? (try #require(getpwnam(user)).pointee.pw_uid, getpwnam(user)!.pointee.pw_gid) : (getuid(), getgid())

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-unit-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        if Unprivileged.isRoot { chown(dir + "/state", uid, gid) }
        let (port, raftPort) = (try await freePort(), try await freePort())
        let config = dir + "/baton.json"
        try """
            {"nodeID": "baton-1", "host": "127.0.0.1", "port": \(port), "dataDirectory": "\(dir)/state", "metricsPort": 0,
             "cluster": [{"nodeID": "baton-1", "host": "127.0.0.1", "port": \(port), "raftPort": \(raftPort)}]}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)

        let arguments = exec.dropFirst(2).map { $0 == "/etc/baton/baton.json" ? config : $0 }
        let node = try launchNode(["serve"] + arguments, user: (uid, gid))
        defer {
            kill(node.processIdentifier, SIGKILL)
            node.waitUntilExit()
        }
        var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"], name: "unit")
        c.retryTimeout = .seconds(10)
        let client = BatonClient(configuration: c)
        let granted = try await client.acquireLock("unit", ttl: .seconds(5))
        #expect({ if case .granted = granted { true } else { false } }())
        await client.shutdown()
        let peer = try? rawConnect(port: raftPort)
        #expect(peer != nil, "the peer port does not accept")
        if let peer { close(peer) }
        let status = try String(contentsOfFile: "/proc/\(node.processIdentifier)/status", encoding: .utf8)
        let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""
        #expect(uidLine.split(separator: "\t").dropFirst().allSatisfy { $0 == "\(uid)" }, "\(uidLine), expected \(uid)")
    }
}
