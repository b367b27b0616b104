import BatonClient
import BatonProtocol
import Foundation
import Testing

@testable import BatonServer

/// Three `baton serve` members on loopback, as the process tests run them (as the unprivileged
/// user): their configuration files, written by encoding `NodeConfiguration`, the launch of each
/// member, and the leader probe. One place for what the cluster tests used to borrow from
/// `ClusterTests` (issue 37).
public enum TestCluster {
    public struct Member: Sendable {
        public var id: String
        public var port: Int
        public var raftPort: Int
        public var directory: String
        public var config: String
        public var http2Port: Int?
    }

    /// Three members' configuration files, each with a data directory of its own and no metrics
    /// port; with `http2`, each serves HTTP/2 too, and the cluster list names every member's port.
    public static func writeConfigs(http2: Bool = false) async throws -> [Member] {
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
    public static func remove(_ members: [Member]) {
        for m in members {
            try? FileManager.default.removeItem(atPath: m.directory)
            try? FileManager.default.removeItem(atPath: m.config)
        }
    }

    /// Starts `m` as the unprivileged user, its output discarded.
    public static func launch(_ m: Member) throws -> Process {
        try launchNode(["serve", "--config", m.config, "--log-level", "error"])
    }

    /// A client that knows every member (it finds the leader itself).
    public static func client(_ members: [Member], name: String, retryTimeout: Duration = .seconds(10)) -> BatonClient {
        var c = BatonClient.Configuration(endpoints: members.map { "127.0.0.1:\($0.port)" }, name: name)
        c.retryTimeout = retryTimeout
        return BatonClient(configuration: c)
    }

    /// The member that says it leads, asked directly.
    public static func leader(_ members: [Member]) async -> Int? {
        await statuses(members).firstIndex { $0?.role == .leader }
    }

    /// The member among `candidates` (all by default) that says it leads, once one does.
    public static func waitForLeader(
        _ members: [Member], among candidates: [Int]? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Int {
        let candidates = candidates ?? Array(members.indices)
        return try await eventually("a member among \(candidates) leads", every: .milliseconds(100), sourceLocation: sourceLocation) {
            await leader(candidates.map { members[$0] }).map { candidates[$0] }
        }
    }

    /// Each member's status, asked directly (nil for one that does not answer).
    public static func statuses(_ members: [Member]) async -> [NodeStatus?] {
        var statuses: [NodeStatus?] = []
        for m in members {
            var c = BatonClient.Configuration(endpoints: ["127.0.0.1:\(m.port)"], name: "probe")
            c.retryTimeout = .milliseconds(100)
            c.requestTimeout = .milliseconds(300)
            let probe = BatonClient(configuration: c)
            statuses.append(try? await probe.nodeStatus())
            await probe.shutdown()
        }
        return statuses
    }

    /// Waits until every member answers, one leads, all are in its term and none lags it by more
    /// than `lag` entries (a restarted member has caught up).
    public static func waitUntilSettled(
        _ members: [Member], lag: UInt64 = 5, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        try await eventually("every member answers with one leader, caught up", sourceLocation: sourceLocation) {
            let statuses = await statuses(members).compactMap { $0 }
            let leaders = statuses.filter { $0.role == .leader }
            return statuses.count == members.count && leaders.count == 1
                && statuses.allSatisfy { $0.term == leaders[0].term && $0.appliedIndex + lag >= leaders[0].commitIndex }
        }
    }
}
