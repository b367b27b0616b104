import Foundation
import Testing

@testable import BatonRaft

/// Readable interaction traces of the scenario tests, in the manner of etcd-io/raft's `testdata/`:
/// every message delivered, every tick and proposal, one line each. A scenario's expected trace is
/// checked in under `testdata/<scenario>.trace`; a change in Raft's behaviour shows as a diff there.
/// `BATON_REWRITE_TRACES=1 swift test --filter RaftTests` writes them anew.
enum Trace {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata")
    }

    /// Compares `lines` with the checked-in trace of `scenario` (or writes it, when asked to).
    static func check(_ lines: [String], scenario: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = directory.appendingPathComponent("\(scenario).trace")
        let text = collapsed(lines).joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["BATON_REWRITE_TRACES"] != nil {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            Issue.record("no trace checked in at \(file.path); write it with BATON_REWRITE_TRACES=1", sourceLocation: sourceLocation)
            return
        }
        guard expected != text else { return }
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let got = text.split(separator: "\n", omittingEmptySubsequences: false)
        let line = (0..<min(want.count, got.count)).first { want[$0] != got[$0] } ?? min(want.count, got.count)
        let wanted = line < want.count ? String(want[line]) : "(end)"
        let gotten = line < got.count ? String(got[line]) : "(end)"
        Issue.record(
            "trace \(scenario) differs at line \(line + 1): expected \"\(wanted)\", got \"\(gotten)\" (BATON_REWRITE_TRACES=1 rewrites it)",
            sourceLocation: sourceLocation)
    }
}

/// Runs of one repeated line (ticks in a row) as one line: "tick ×10".
private func collapsed(_ lines: [String]) -> [String] {
    var out: [String] = []
    var run = 0
    for (i, line) in lines.enumerated() {
        run += 1
        if i + 1 < lines.count, lines[i + 1] == line { continue }
        out.append(run > 1 ? "\(line) ×\(run)" : line)
        run = 0
    }
    return out
}

extension RaftEnvelope {
    /// One line: sender → receiver, the sender's term, the message and its fields.
    var traceLine: String {
        "\(from)->\(to) t\(term) \(message.traceText)"
    }
}

extension RaftMessage {
    var traceText: String {
        switch self {
        case .preVote(let lastIndex, let lastTerm): "PreVote last=\(lastIndex)@t\(lastTerm)"
        case .preVoteReply(let granted): "PreVoteReply \(granted ? "granted" : "refused")"
        case .vote(let lastIndex, let lastTerm): "Vote last=\(lastIndex)@t\(lastTerm)"
        case .voteReply(let granted): "VoteReply \(granted ? "granted" : "refused")"
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            "Append prev=\(prevIndex)@t\(prevTerm) entries=[\(entries.map { "\($0.index)@t\($0.term)" }.joined(separator: " "))] commit=\(commit)"
        case .appendReply(let success, let index, let hint):
            success ? "AppendReply ok index=\(index)" : "AppendReply refused index=\(index) hint=\(hint)"
        case .heartbeat(let commit, let round, _): "Heartbeat commit=\(commit) round=\(round)"
        case .heartbeatReply(let round, let syncing): "HeartbeatReply round=\(round)\(syncing ? " syncing" : "")"
        case .installSnapshot(let snapshot): "InstallSnapshot \(snapshot.index)@t\(snapshot.term) bytes=\(snapshot.data.count)"
        }
    }
}
