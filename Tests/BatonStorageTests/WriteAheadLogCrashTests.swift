import BatonRaft
import Foundation
import Testing

@testable import BatonStorage

/// Seeded runs of the write-ahead log as the node drives it — appends (some replacing a suffix, as a
/// new leader's entries do), hard states, commits with and without a sync, rotations, compactions
/// behind a snapshot, small segments — each cut by crashes and recoveries. A crash abandons the log
/// as `kill -9` does (what was written stays, the pending buffer is lost), sometimes right after the
/// next segment's file was created and before anything was written to it. After every recovery the
/// log holds exactly what was committed above the snapshot, in order, and goes on from there.
/// The two segment bugs of 2026-12-08 (a reused name truncating a live segment; an empty segment
/// adopted without a header) fail here within the first seeds.
@Suite struct WriteAheadLogCrashTests {
    /// The log as the node wrote it: entries with Raft's replacing rule.
    struct Model {
        var entries: [LogEntry] = []
        var snapshot = LogIndex.zero
        var term: UInt64 = 1

        var last: UInt64 { entries.last?.index.rawValue ?? snapshot.rawValue }

        /// A snapshot at `index` covers the entries up to it.
        mutating func compact(to index: LogIndex) {
            snapshot = index
            entries.removeAll { $0.index <= index }
        }

        mutating func append(_ new: [LogEntry]) {
            for entry in new {
                entries.removeAll { $0.index >= entry.index }
                entries.append(entry)
            }
        }
    }

    @Test func seededRunsRecoverWhatWasCommitted() throws {
        for seed in UInt64(1)...300 {
            try run(seed: seed)
        }
    }

    func run(seed: UInt64) throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: seed)
        func draw(_ n: UInt64) -> UInt64 { rng.next() % n }
        var wal = try WriteAheadLog(directory: dir, segmentSize: 256)
        _ = try wal.recover()
        var written = Model()  // appended, in the buffer or on the file
        var committed = Model()  // on the file: survives a crash
        for crash in 0..<4 {
            for _ in 0..<(20 + draw(60)) {
                switch draw(12) {
                case 0...3:
                    let first = written.last + 1
                    let batch = entries(first...first + draw(3), term: written.term)
                    wal.append(batch)
                    written.append(batch)
                case 4:
                    // A new leader's entries replace the suffix from above the snapshot.
                    let first = written.snapshot.rawValue + 1 + draw(written.last - written.snapshot.rawValue + 1)
                    written.term += 1
                    let batch = entries(first...first + draw(3), term: written.term)
                    wal.append(batch)
                    written.append(batch)
                case 5:
                    wal.append(HardState(term: Term(written.term), vote: NodeIndex(1), commit: LogIndex(committed.last)))
                case 6, 7:
                    try wal.commit(sync: draw(2) == 0)
                    committed = written
                case 8, 9:
                    // A snapshot starts: what was appended is written, and the segment closed.
                    try wal.commit()
                    try wal.rotate()
                    committed = written
                case 10:
                    // A snapshot at or below what is written compacts the log behind it.
                    guard committed.last > committed.snapshot.rawValue else { continue }
                    let at = LogIndex(committed.snapshot.rawValue + 1 + draw(committed.last - committed.snapshot.rawValue))
                    try wal.compact(upTo: at)
                    written.compact(to: at)
                    committed.compact(to: at)
                default:
                    try wal.commit()
                    committed = written
                }
            }
            // The crash: the pending buffer is lost; now and then the next segment's file had just
            // been created (the one before it closed first, as `startSegment` does).
            if draw(3) == 0 {
                try wal.rotate()
                let names = try FileIO.list(dir).filter { $0.hasPrefix("wal-") }.sorted()
                let next = (names.last.flatMap { UInt64($0.dropFirst(4).dropLast(4), radix: 16) } ?? 0) + 1
                let path = "\(dir)/wal-\(String(next, radix: 16).leftPadded(16)).log"
                try #require(FileManager.default.createFile(atPath: path, contents: nil))
            }
            wal = try WriteAheadLog(directory: dir, segmentSize: 256)
            let recovered: WriteAheadLog.Recovered
            do {
                recovered = try wal.recover(after: committed.snapshot)
            } catch {
                Issue.record("seed \(seed), crash \(crash): start-up refused the log: \(error)")
                return
            }
            guard recovered.entries == committed.entries else {
                Issue.record(
                    "seed \(seed), crash \(crash): recovered \(recovered.entries.map { "\($0.index)@\($0.term)" }), committed \(committed.entries.map { "\($0.index)@\($0.term)" }) above \(committed.snapshot)"
                )
                return
            }
            written = committed
        }
    }
}
