import BatonClientCore
import Foundation
import Testing

/// The traces of `Clients/testdata`: events in, decisions out ("> " lines), replayed by the Swift
/// core here and by the Python client's `test_traces.py`, so the two cannot drift apart.
/// `BATON_REWRITE_TRACES=1 swift test --filter TraceTests` writes the decisions anew.
enum ClientTrace {
    /// Replays the trace `name` through `replay` (which gets each event line and its fields, and
    /// returns the decision lines), and compares the result with the file, or rewrites it.
    static func check(
        _ name: String, sourceLocation: SourceLocation = #_sourceLocation,
        replay: (_ event: Substring, _ fields: Fields) throws -> [String]
    ) throws {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Clients/testdata/\(name)")
        let expected = try String(contentsOf: file, encoding: .utf8)
        var out: [String] = []
        for line in expected.split(separator: "\n", omittingEmptySubsequences: false) where !line.hasPrefix(">") {
            out.append(String(line))
            let words = line.split(separator: " ")
            guard let event = words.first, !event.hasPrefix("#") else { continue }
            out += try replay(event, Fields(line: line, words: words.dropFirst()))
        }
        let replayed = out.joined(separator: "\n")
        if ProcessInfo.processInfo.environment["BATON_REWRITE_TRACES"] != nil {
            try replayed.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let got = replayed.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(want.count == got.count, "\(name) has \(want.count) lines, the replay \(got.count)", sourceLocation: sourceLocation)
        for (i, (w, g)) in zip(want, got).enumerated() {
            #expect(w == g, "\(name) line \(i + 1): expected \"\(w)\", got \"\(g)\" (BATON_REWRITE_TRACES=1 rewrites it)", sourceLocation: sourceLocation)
        }
    }

    /// An event's `name=value` fields, and its bare words.
    struct Fields {
        let line: Substring
        let words: ArraySlice<Substring>

        /// The text of `name=`, if the event has it.
        func text(_ name: String) -> String? {
            for word in words {
                let pair = word.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0] == name { return String(pair[1]) }
            }
            return nil
        }

        /// The whole number of `name=`; a recorded failure when the event lacks it.
        func number(_ name: String) throws -> Int64 {
            try #require(text(name).flatMap { Int64($0) }, "line \"\(line)\" lacks \(name)=<number>")
        }

        /// The first bare word (no `=`).
        var word: Substring? { words.first { !$0.contains("=") } }
    }
}

extension ManualInstant {
    /// Whole milliseconds from the origin (a trace's times are whole).
    var ms: Int64 { offset.ms }
}

extension Duration {
    /// Whole milliseconds (a trace's times are whole).
    var ms: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
