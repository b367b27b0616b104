import BatonProtocol
import Foundation

// What batonctl prints, as values: the JSON output encodes these, the tables print them.

struct WaiterView: Codable {
    var owner: String
    var clientID: String
    var deadlineMs: UInt64
}

struct LockView: Codable {
    var key: String
    var owner: String
    var clientID: String
    var token: UInt64
    var grantedAtMs: UInt64
    var expiresAtMs: UInt64
    var expiresInMs: Int64
    var waiters: [WaiterView]

    init(_ l: LockInfo, now: Timestamp) {
        key = l.key
        owner = l.owner
        clientID = l.clientID.description
        token = l.token.rawValue
        grantedAtMs = l.grantedAt.milliseconds
        expiresAtMs = l.expiresAt.milliseconds
        expiresInMs = Int64(l.expiresAt.milliseconds) - Int64(now.milliseconds)
        waiters = l.waiters.map { WaiterView(owner: $0.owner, clientID: $0.clientID.description, deadlineMs: $0.deadline.milliseconds) }
    }
}

struct LeaseView: Codable {
    var kind: String
    var key: String
    var jobID: UInt64?
    var owner: String
    var token: UInt64
    var expiresInMs: Int64

    init(_ l: LeaseInfo, now: Timestamp) {
        kind = l.kind == .lock ? "lock" : "job"
        key = l.key
        jobID = l.kind == .job ? l.jobID.rawValue : nil
        owner = l.owner
        token = l.token.rawValue
        expiresInMs = Int64(l.expiresAt.milliseconds) - Int64(now.milliseconds)
    }
}

struct JobView: Codable {
    var id: UInt64
    var type: String
    var state: String
    var priority: Int32
    var attempts: UInt16
    var maxAttempts: UInt16
    var uniqueKey: String
    var createdAtMs: UInt64
    var runAtMs: UInt64
    var leaseExpiresInMs: Int64?
    var worker: String
    var lastError: String
    var payload: String
    var result: String

    init(_ j: JobInfo, now: Timestamp) {
        id = j.id.rawValue
        type = j.type
        state = j.state.description
        priority = j.priority
        attempts = j.attempts
        maxAttempts = j.maxAttempts
        uniqueKey = j.uniqueKey
        createdAtMs = j.createdAt.milliseconds
        runAtMs = j.runAt.milliseconds
        leaseExpiresInMs = j.state == .running ? Int64(j.leaseExpiresAt.milliseconds) - Int64(now.milliseconds) : nil
        worker = j.worker
        lastError = j.lastError
        payload = Self.text(j.payload)
        result = Self.text(j.result)
    }

    /// UTF-8 text as it is; other bytes as base64 with a prefix.
    static func text(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        return "base64:" + Data(bytes).base64EncodedString()
    }
}

struct StatusView: Codable {
    struct Node: Codable {
        var id: String
        var address: String
        var role: String
        var leader: Bool
        var term: UInt64
        var commitIndex: UInt64
        var appliedIndex: UInt64
        var lag: UInt64
        var uptimeSeconds: UInt64
        var durable: Bool
        var connections: UInt32
    }
    struct Totals: Codable {
        var locksHeld: UInt32
        var lockWaiters: UInt32
        var claimWaiters: UInt32
        var jobsQueued: UInt32
        var jobsRunning: UInt32
        var jobsCompleted: UInt32
        var jobsDead: UInt32
        var clients: UInt32
    }
    var nodes: [Node]
    var totals: Totals

    /// One row per endpoint asked (unreachable ones included); lag is how far each node's applied
    /// index trails the leader's commit index; totals come from the leader (or the first node that answered).
    init(_ answers: [(endpoint: String, status: NodeStatus?)]) {
        let statuses = answers.compactMap(\.status)
        let leader = statuses.first { $0.role == .leader || $0.role == .standalone } ?? statuses.first
        let commit = leader?.commitIndex ?? 0
        nodes = answers.map { endpoint, s in
            guard let s else {
                return Node(
                    id: "?", address: endpoint, role: "unreachable", leader: false, term: 0, commitIndex: 0, appliedIndex: 0,
                    lag: 0, uptimeSeconds: 0, durable: false, connections: 0)
            }
            return Node(
                id: s.nodeID, address: s.address, role: s.role.description, leader: s.role == .leader || s.role == .standalone,
                term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex,
                lag: max(commit, s.commitIndex) - min(s.appliedIndex, max(commit, s.commitIndex)),
                uptimeSeconds: s.uptimeMilliseconds / 1000, durable: s.durable, connections: s.connections)
        }
        let m = leader?.summary
        totals = Totals(
            locksHeld: m?.locksHeld ?? 0, lockWaiters: m?.lockWaiters ?? 0, claimWaiters: m?.claimWaiters ?? 0,
            jobsQueued: m?.jobsQueued ?? 0, jobsRunning: m?.jobsRunning ?? 0, jobsCompleted: m?.jobsCompleted ?? 0,
            jobsDead: m?.jobsDead ?? 0, clients: m?.sessions ?? 0)
    }
}

/// A plain text table: a header row, then rows, columns padded to their widest cell.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

func seconds(_ ms: Int64) -> String {
    String(format: "%.1fs", Double(ms) / 1000)
}
