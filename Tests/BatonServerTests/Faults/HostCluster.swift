import BatonClient
import BatonProtocol
import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The three members of `deploy/three-hosts`, each on a host of `Hosts`, configured from those
/// files (their addresses mapped onto the test's subnet, a snapshot every 300 entries, completed
/// jobs kept for a day) and run as an unprivileged user.
final class HostCluster {
    let hosts: Hosts
    let directory: String
    let endpoints: [String]
    let clientGroup: MultiThreadedEventLoopGroup
    private(set) var processes: [Process?] = [nil, nil, nil]

    init(hosts: Hosts) throws {
        self.hosts = hosts
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("baton-hosts-\(UUID())").path
        endpoints = (0..<3).map { "\(hosts.address(ofMember: $0)):7700" }
        clientGroup = try hosts.clientEventLoopGroup()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        let deploy = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/three-hosts")
        for i in 0..<3 {
            var text = try String(contentsOf: deploy.appendingPathComponent("baton-\(i + 1).json"), encoding: .utf8)
            text = text.replacingOccurrences(of: "\"10.0.0.", with: "\"\(Hosts.subnet).")
            text = text.replacingOccurrences(of: "\"/var/lib/baton\"", with: "\"\(directory)/data-\(i + 1)\"")
            // Snapshots every few hundred entries, so a member back from a fault is sent one; completed
            // jobs kept for a day, so the jobs checker finds every acknowledged add at the end.
            text = text.replacingOccurrences(
                of: "\"sync\": \"always\",",
                with: "\"sync\": \"always\", \"snapshotEveryEntries\": 300, \"limits\": {\"completedRetentionMilliseconds\": 86400000},")
            guard text.contains("snapshotEveryEntries") else { throw HostsError("deploy/three-hosts/baton-\(i + 1).json has no sync line") }
            try Unprivileged.makeDirectory("\(directory)/data-\(i + 1)")
            try text.write(toFile: config(i), atomically: true, encoding: .utf8)
            Unprivileged.handOver(config(i))
        }
    }

    func config(_ i: Int) -> String { "\(directory)/baton-\(i + 1).json" }

    func start(_ i: Int) throws {
        let command = Unprivileged.isRoot
            ? ["/usr/bin/setpriv", "--reuid=\(Unprivileged.user.uid)", "--regid=\(Unprivileged.user.gid)", "--clear-groups", "--inh-caps=-all", "--"]
            : []
        let p = hosts.process(in: hosts.members[i], command + [try Unprivileged.executable("baton"), "serve", "--config", config(i), "--log-level", "error"])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        processes[i] = p
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

    /// A client on the client host.
    func client(
        _ name: String, endpoints: [String]? = nil, retryTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(2)
    ) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: endpoints ?? self.endpoints, name: name)
        c.retryTimeout = retryTimeout
        c.requestTimeout = requestTimeout
        c.eventLoopGroup = clientGroup
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
