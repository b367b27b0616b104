import BatonClient
import Foundation

@testable import BatonServer

/// Three `baton serve` members on loopback, as the process tests run them (as the unprivileged
/// user): their configuration files, written by encoding `NodeConfiguration`, the launch of each
/// member, and the leader probe. One place for what the cluster tests used to borrow from
/// `ClusterTests` (issue 37).
enum TestCluster {
    struct Member {
        var id: String
        var port: Int
        var raftPort: Int
        var directory: String
        var config: String
        var http2Port: Int?
    }

    /// Three members' configuration files, each with a data directory of its own and no metrics
    /// port; with `http2`, each serves HTTP/2 too, and the cluster list names every member's port.
    static func writeConfigs(http2: Bool = false) async throws -> [Member] {
        var members: [Member] = []
        for i in 1...3 {
            let dir = temporaryDataDirectory()
            try Unprivileged.makeDirectory(dir)
            members.append(
                Member(
                    id: "n\(i)", port: try await freePort(), raftPort: try await freePort(), directory: dir, config: dir + ".json",
                    http2Port: http2 ? try await freePort() : nil))
        }
        let cluster = members.map {
            NodeConfiguration.ClusterMember(nodeID: $0.id, host: "127.0.0.1", port: $0.port, raftPort: $0.raftPort, http2Port: $0.http2Port)
        }
        for m in members {
            var c = NodeConfiguration()
            c.nodeID = m.id
            c.port = m.port
            c.dataDirectory = "\(m.directory)/data"
            c.metricsPort = 0
            c.http2Port = m.http2Port
            c.cluster = cluster
            try JSONEncoder().encode(c).write(to: URL(fileURLWithPath: m.config))
            Unprivileged.handOver(m.config)
        }
        return members
    }

    /// Removes the members' files.
    static func remove(_ members: [Member]) {
        for m in members {
            try? FileManager.default.removeItem(atPath: m.directory)
            try? FileManager.default.removeItem(atPath: m.config)
        }
    }

    /// Starts `m` as the unprivileged user, its output discarded.
    static func launch(_ m: Member) throws -> Process {
        let process = try Unprivileged.process("baton", ["serve", "--config", m.config, "--log-level", "error"])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The member that says it leads, asked directly.
    static func leader(_ members: [Member]) async -> Int? {
        for (i, m) in members.enumerated() {
            var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(m.port)"], name: "probe")
            c.retryTimeout = .milliseconds(100)
            c.requestTimeout = .milliseconds(300)
            let client = BatonClient(configuration: c)
            let status = try? await client.nodeStatus()
            await client.shutdown()
            if status?.role == .leader { return i }
        }
        return nil
    }
}
