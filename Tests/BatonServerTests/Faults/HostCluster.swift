import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The three members of `deploy/three-hosts`, each on a host of `Hosts`, configured from those
/// files (their addresses mapped onto the test's subnet, a snapshot every 300 entries, completed
/// jobs kept for a day) and run as an unprivileged user: secured as deployed, with TLS to clients
/// and between members and authentication, from certificates and a token that
/// `deploy/make-certs.sh` makes for the test's addresses.
final class HostCluster {
    let hosts: Hosts
    let directory: String
    let endpoints: [String]
    let clientGroup: MultiThreadedEventLoopGroup
    /// The `baton` the members run: this build's, or the one `BATON_FAULT_BATON` names (a build of
    /// an older commit, `Tests/Faults-against/build-cf7b0d9.sh`), copied where every user may run it.
    let executable: String
    private(set) var processes: [Process?] = [nil, nil, nil]
    /// Members that exited without being killed (a crash, or a refusal to start), with their status.
    private(set) var exitedOnTheirOwn: [(member: Int, status: Int32)] = []
    /// What clients need to reach the secured members: the CA and the admin token (nil for an older
    /// build, `BATON_FAULT_BATON`, which runs the files without their security keys).
    let security: (ca: String, token: String)?

    init(hosts: Hosts) throws {
        self.hosts = hosts
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("baton-hosts-\(UUID())").path
        endpoints = (0..<3).map { "\(hosts.address(ofMember: $0)):7700" }
        clientGroup = try hosts.clientEventLoopGroup()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        if let other = ProcessInfo.processInfo.environment["BATON_FAULT_BATON"], !other.isEmpty {
            executable = "\(directory)/baton"
            try FileManager.default.copyItem(atPath: other, toPath: executable)
            chmod(executable, 0o755)
        } else {
            executable = try Unprivileged.executable("baton")
        }
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let deploy = root.appendingPathComponent("deploy/three-hosts")
        let olderBuild = ProcessInfo.processInfo.environment["BATON_FAULT_BATON"].map { !$0.isEmpty } ?? false
        let etc = "\(directory)/etc"
        if olderBuild {
            security = nil
        } else {
            let addresses = (0..<3).map { hosts.address(ofMember: $0) }
            let (status, output) = try runTool(root.appendingPathComponent("deploy/make-certs.sh").path, [etc] + addresses)
            guard status == 0 else { throw HostsError("deploy/make-certs.sh failed (\(status)): \(output)") }
            chmod(etc, 0o755)
            for file in try FileManager.default.contentsOfDirectory(atPath: etc) { Unprivileged.handOver("\(etc)/\(file)") }
            let token = try String(contentsOfFile: "\(etc)/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            security = ("\(etc)/ca.pem", token)
        }
        for i in 0..<3 {
            var text = try String(contentsOf: deploy.appendingPathComponent("baton-\(i + 1).json"), encoding: .utf8)
            text = text.replacingOccurrences(of: "\"10.0.0.", with: "\"\(Hosts.subnet).")
            text = text.replacingOccurrences(of: "\"/var/lib/baton\"", with: "\"\(directory)/data-\(i + 1)\"")
            text = text.replacingOccurrences(of: "\"/etc/baton/", with: "\"\(etc)/")
            if olderBuild {
                text = text.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.contains("\"tls\"") && !$0.contains("\"peerTLS\"") && !$0.contains("\"auth\"") }
                    .joined(separator: "\n")
            }
            // Snapshots every 200 entries and 64 KiB segments (issue 34: saves that collide), so a member back from a fault is sent one; completed
            // jobs kept for a day, so the jobs checker finds every acknowledged add at the end.
            text = text.replacingOccurrences(
                of: "\"sync\": \"always\",",
                with: "\"sync\": \"always\", \"snapshotEveryEntries\": 200, \"segmentSizeBytes\": 65536, \"limits\": {\"completedRetentionMilliseconds\": 86400000},")
            guard text.contains("snapshotEveryEntries") else { throw HostsError("deploy/three-hosts/baton-\(i + 1).json has no sync line") }
            try Unprivileged.makeDirectory("\(directory)/data-\(i + 1)")
            try text.write(toFile: config(i), atomically: true, encoding: .utf8)
            Unprivileged.handOver(config(i))
        }
    }

    func config(_ i: Int) -> String { "\(directory)/baton-\(i + 1).json" }

    /// Member `i`'s log (level info), over all its runs.
    func log(_ i: Int) -> String { "\(directory)/baton-\(i + 1).log" }

    /// How many times a member installed a snapshot its leader sent.
    func snapshotsInstalled() -> Int {
        (0..<3).reduce(0) { n, i in
            let text = (try? String(contentsOfFile: log(i), encoding: .utf8)) ?? ""
            return n + text.components(separatedBy: "installed the leader's snapshot").count - 1
        }
    }

    func start(_ i: Int) throws {
        noteExits()
        processes[i] = try launchNode(
            ["serve", "--config", config(i), "--log-level", "info"], output: .appended(toFile: log(i)), namespace: hosts.members[i],
            build: executable)
    }

    func signal(_ i: Int, _ signal: Int32) {
        if let p = processes[i], p.isRunning { kill(p.processIdentifier, signal) }
    }

    /// SIGKILL, and waits for the process to be gone.
    func crash(_ i: Int) {
        guard let p = processes[i] else { return }
        kill(p.processIdentifier, SIGCONT)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        processes[i] = nil
    }

    var isRunning: [Bool] { processes.map { $0?.isRunning ?? false } }

    /// Members that are not running though nobody killed them, recorded in `exitedOnTheirOwn`.
    func noteExits() {
        for i in 0..<3 {
            if let p = processes[i], !p.isRunning {
                exitedOnTheirOwn.append((i, p.terminationStatus))
                processes[i] = nil
            }
        }
    }

    /// A client on the client host.
    func client(
        _ name: String, endpoints: [String]? = nil, retryTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(2)
    ) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: endpoints ?? self.endpoints, name: name)
        c.retryTimeout = retryTimeout
        c.requestTimeout = requestTimeout
        c.eventLoopGroup = clientGroup
        if let security {
            c.tls = BatonClient.TLS(caFile: security.ca)
            c.token = security.token
        }
        return BatonClient(configuration: c)
    }

    /// Each member's status, asked directly (nil: no answer).
    func statuses() async -> [NodeStatus?] {
        var result: [NodeStatus?] = []
        for endpoint in endpoints {
            let probe = client("probe", endpoints: [endpoint], retryTimeout: .milliseconds(100), requestTimeout: .milliseconds(300))
            result.append(try? await probe.nodeStatus())
            await probe.shutdown()
        }
        return result
    }

    /// Stops every member and removes the data.
    func destroy() {
        for i in 0..<3 { crash(i) }
        try? clientGroup.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
