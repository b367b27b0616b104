import BatonRaft
import Foundation
import Testing

@testable import BatonStorage

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-wal-\(UUID())").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [LogEntry] {
    range.map { LogEntry(term: Term(term), index: LogIndex($0), data: Array("entry \($0)".utf8)) }
}

@Suite struct WriteAheadLogTests {
    @Test func appendedEntriesAndHardStateComeBack() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...3))
        wal.append(HardState(term: Term(1), vote: NodeIndex(2), commit: LogIndex(3)))
        try wal.commit()
        wal.append(entries(4...5))
        try wal.commit()

        let again = try WriteAheadLog(directory: dir)
        let r = try again.recover()
        #expect(r.entries == entries(1...5))
        #expect(r.hardState == HardState(term: Term(1), vote: NodeIndex(2), commit: LogIndex(3)))
        #expect(r.truncatedBytes == 0)
        #expect(again.lastIndex == LogIndex(5))
    }

    /// A write without a sync is on the file (it comes back after a reopen) and is synced by the
    /// next commit that asks for one, even when that commit has nothing of its own to write.
    @Test func aWriteWithoutSyncIsSyncedByTheNextCommit() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...2))
        try wal.commit()
        let synced = wal.syncs
        wal.append(HardState(term: Term(1), vote: NodeIndex(1), commit: LogIndex(2)))
        try wal.commit(sync: false)
        #expect(wal.syncs == synced)
        try wal.commit()
        #expect(wal.syncs == synced + 1)
        try wal.commit()
        #expect(wal.syncs == synced + 1)

        let r = try WriteAheadLog(directory: dir).recover()
        #expect(r.entries == entries(1...2))
        #expect(r.hardState == HardState(term: Term(1), vote: NodeIndex(1), commit: LogIndex(2)))
    }

    @Test func laterEntriesReplaceAConflictingSuffix() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...5, term: 1))
        wal.append(entries(3...4, term: 2))
        try wal.commit()
        let r = try WriteAheadLog(directory: dir).recover()
        #expect(r.entries == entries(1...2, term: 1) + entries(3...4, term: 2))
    }

    @Test func segmentsRotateAndCompactBehindASnapshot() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir, segmentSize: 200)
        _ = try wal.recover()
        for i in stride(from: UInt64(1), through: 60, by: 3) {
            wal.append(entries(i...i + 2))
            try wal.commit()
        }
        let segments = wal.segmentPaths.count
        #expect(segments > 3)
        try wal.compact(upTo: LogIndex(40))
        #expect(wal.segmentPaths.count < segments)
        let r = try WriteAheadLog(directory: dir, segmentSize: 200).recover(after: LogIndex(40))
        #expect(r.entries == entries(41...60))
    }

    /// Two segments started with no entry between them (a snapshot's rotation, then an installed
    /// snapshot's, each followed by a hard state alone) once got the same name: the second start
    /// truncated the first file and listed it twice, and a compaction then deleted the live segment,
    /// losing entries a sync had acknowledged (SnapshotCrashTests saw "the log jumps from index 1724
    /// to 1728"). Names now always grow, and an existing file is never truncated.
    @Test func segmentsStartedWithNoEntryBetweenThemKeepTheirEntries() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        let state = HardState(term: Term(1), vote: NodeIndex(1), commit: LogIndex(5))
        wal.append(entries(1...5))
        wal.append(state)
        try wal.commit()
        for _ in 0..<2 {
            try wal.rotate()
            wal.append(state)
            try wal.commit()
        }
        #expect(Set(wal.segmentPaths).count == wal.segmentPaths.count, "a segment is listed twice: \(wal.segmentPaths)")
        wal.append(entries(6...8))
        try wal.commit()
        try wal.compact(upTo: LogIndex(6))
        wal.append(entries(9...9))
        try wal.commit()
        let r = try WriteAheadLog(directory: dir).recover(after: LogIndex(6))
        #expect(r.entries == entries(7...9))
    }

    /// A follower's log overwritten from an index below the first one of a later segment (a new
    /// leader's entries replacing an old leader's) is read back in the order it was written: the
    /// replacing entries win.
    @Test func aReplacingSegmentIsReadAfterTheSegmentItReplaces() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...5, term: 1))
        try wal.commit()
        try wal.rotate()
        wal.append(entries(6...8, term: 1))
        try wal.commit()
        try wal.rotate()
        wal.append(entries(4...6, term: 2))
        try wal.commit()
        let r = try WriteAheadLog(directory: dir).recover()
        #expect(r.entries == entries(1...3, term: 1) + entries(4...6, term: 2))
    }

    /// A log of entries 1…5 in one segment; returns its path, where entry 5's record starts, its
    /// records' bytes and the segment's preallocated length.
    func fiveEntryLog(in dir: String) throws -> (path: String, lastRecord: Int, bytes: [UInt8], fileSize: Int) {
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...4))
        try wal.commit()
        let path = wal.segmentPaths[0]
        let lastRecord = wal.currentSize
        wal.append(entries(5...5))
        try wal.commit()
        return (path, lastRecord, Array(try FileIO.readAll(path)[0..<wal.currentSize]), FileIO.size(path))
    }

    /// After recovery the log takes new writes where its good records end.
    func expectAppendAfterRecovery(in dir: String, _ comment: Comment) throws {
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(5...6))
        try wal.commit()
        #expect(try WriteAheadLog(directory: dir).recover().entries == entries(1...6), comment)
    }

    /// Cuts the file at every byte offset inside the last record (the file's length reached the disk
    /// but the tail did not): every complete record survives.
    @Test func tornTailAtEveryByteOffsetKeepsEveryCompleteRecord() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, goodSize, full, _) = try fiveEntryLog(in: dir)
        for cut in goodSize..<full.count {
            await Task.yield()  // a long loop would hold a thread the tests beside it need
            try Data(full[0..<cut]).write(to: URL(fileURLWithPath: path))
            let r = try WriteAheadLog(directory: dir).recover()
            #expect(r.entries == entries(1...4), "cut at \(cut)")
            // A cut inside a length field can leave only zeros: that is unwritten space, not a tear.
            let onlyZeros = full[goodSize..<cut].allSatisfy { $0 == 0 }
            #expect(r.truncatedBytes == (onlyZeros ? 0 : cut - goodSize))
            #expect(FileIO.size(path) == (onlyZeros ? cut : goodSize))
            try expectAppendAfterRecovery(in: dir, "cut at \(cut)")
        }
    }

    /// The same tear inside a preallocated segment: part of the last record, then zeros.
    @Test func tornTailInPreallocatedSpaceKeepsEveryCompleteRecord() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, goodSize, full, fileSize) = try fiveEntryLog(in: dir)
        #expect(fileSize > full.count)  // the segment is preallocated
        for cut in goodSize..<full.count {
            await Task.yield()  // a long loop would hold a thread the tests beside it need
            let torn = Array(full[0..<cut]) + [UInt8](repeating: 0, count: fileSize - cut)
            try Data(torn).write(to: URL(fileURLWithPath: path))
            let r = try WriteAheadLog(directory: dir).recover()
            #expect(r.entries == entries(1...4), "cut at \(cut)")
            try expectAppendAfterRecovery(in: dir, "cut at \(cut)")
        }
    }

    /// Preallocated zeros after the last record are not a tear: nothing is cut, writes go on after it.
    @Test func zerosAfterTheLastRecordAreFreeSpace() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, _, _, fileSize) = try fiveEntryLog(in: dir)
        let r = try WriteAheadLog(directory: dir).recover()
        #expect(r.entries == entries(1...5))
        #expect(r.truncatedBytes == 0)
        #expect(FileIO.size(path) == fileSize)
    }

    /// Flips each byte of the last record in turn: the record is dropped, the ones before it kept.
    @Test func corruptLastRecordAtEveryByteIsCutOff() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, goodSize, full, fileSize) = try fiveEntryLog(in: dir)
        for offset in goodSize..<full.count {
            await Task.yield()  // a long loop would hold a thread the tests beside it need
            var damaged = full + [UInt8](repeating: 0, count: fileSize - full.count)
            damaged[offset] ^= 0x5A
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let r = try WriteAheadLog(directory: dir).recover()
            #expect(r.entries == entries(1...4), "corrupt byte \(offset)")
        }
    }

    /// A log with small segments, written one entry per commit.
    func oneEntryPerCommit(_ indexes: ClosedRange<UInt64>, in dir: String, segmentSize: Int) throws -> WriteAheadLog {
        let wal = try WriteAheadLog(directory: dir, segmentSize: segmentSize)
        _ = try wal.recover()
        for i in indexes {
            wal.append(entries(i...i))
            try wal.commit()
        }
        return wal
    }

    /// A full segment is cut back to its records when the next one starts.
    @Test func aFullSegmentKeepsNoPreallocatedTail() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try oneEntryPerCommit(1...20, in: dir, segmentSize: 200)
        for path in wal.segmentPaths.dropLast() {
            let bytes = try FileIO.readAll(path)
            #expect(bytes.last != 0, "\(path) ends in zeros")
        }
        #expect(FileIO.size(wal.segmentPaths.last!) == wal.preallocationBytes)
    }

    /// A power loss during a multi-page write: a later page reached the disk, an earlier one did not
    /// (it still holds the synced records, then preallocated zeros). Nothing after the lost page was
    /// synced, so it is cut off like any torn tail, and start-up goes on.
    @Test func aLostPageOfTheLastWriteIsATornTail() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...10))
        try wal.commit()  // synced
        let path = wal.segmentPaths[0]
        let synced = try FileIO.readAll(path).lastIndex { $0 != 0 }! + 1
        wal.append(entries(11...400))  // one write of several pages
        try wal.commit()
        var bytes = try FileIO.readAll(path)
        let pageEnd = (synced / WriteAheadLog.tornPageSize + 1) * WriteAheadLog.tornPageSize
        #expect(bytes[pageEnd..<(pageEnd + 4096)].contains { $0 != 0 })  // later pages hold records
        for i in synced..<pageEnd { bytes[i] = 0 }  // the first page of the second write was lost
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let r = try WriteAheadLog(directory: dir).recover()
        #expect(r.entries == entries(1...10))
        #expect(r.truncatedBytes > 0)
        try expectAppendAfterRecovery(in: dir, "after a lost page")
    }

    /// Writes `range` in one commit to a fresh log in `dir`, then damages its segment on disk.
    func damagedLog(_ range: ClosedRange<UInt64>, in dir: String, _ damage: (inout [UInt8]) -> Void) throws {
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(range))
        try wal.commit()
        let path = wal.segmentPaths[0]
        var bytes = try FileIO.readAll(path)
        damage(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Garbage that is not a lost page (not zeros to the end of its page) before valid records is
    /// corruption, even in the last segment.
    @Test func garbageBeforeValidRecordsInTheLastSegmentStopsStartUp() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try damagedLog(1...400, in: dir) { bytes in
            for i in 5000..<(2 * WriteAheadLog.tornPageSize) { bytes[i] = 0 }  // zeros, but one byte of its page is not
            bytes[2 * WriteAheadLog.tornPageSize - 1] = 0x5A
        }
        #expect(throws: StorageError.self) { try WriteAheadLog(directory: dir).recover() }
    }

    @Test func corruptionInTheMiddleStopsStartUp() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try damagedLog(1...10, in: dir) { $0[20] ^= 0xFF }  // inside the first record
        let error = #expect(throws: StorageError.self) { try WriteAheadLog(directory: dir).recover() }
        #expect(error?.code == .corrupt && "\(error!)".contains("followed by valid records"), "\(String(describing: error))")
    }

    @Test func corruptionInAnOlderSegmentStopsStartUp() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try oneEntryPerCommit(1...6, in: dir, segmentSize: 100)
        let first = wal.segmentPaths[0]
        var bytes = try FileIO.readAll(first)
        bytes[bytes.count - 1] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: first))
        let error = #expect(throws: StorageError.self) { try WriteAheadLog(directory: dir, segmentSize: 100).recover() }
        #expect(error?.code == .corrupt, "\(String(describing: error))")
    }

    /// A crash while the next segment starts: the file was created and nothing written to it, its
    /// header is cut short (two bytes), or it was preallocated but its header never reached the disk
    /// (all zeros). It is removed; writes go on. (The empty file was once kept as the segment to go
    /// on writing, without a header, and the next start refused it.)
    @Test(arguments: [[UInt8](), [UInt8]([0x42, 0x54]), [UInt8](repeating: 0, count: 4096)])
    func aSegmentTornInsideItsHeaderIsRemoved(torn: [UInt8]) throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try WriteAheadLog(directory: dir)
        _ = try wal.recover()
        wal.append(entries(1...2))
        try wal.commit()
        try wal.rotate()  // the segment before is always closed before the next one starts
        try Data(torn).write(to: URL(fileURLWithPath: "\(dir)/wal-00000000000000ff.log"))
        let again = try WriteAheadLog(directory: dir)
        #expect(try again.recover().entries == entries(1...2))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/wal-00000000000000ff.log"))
        again.append(entries(3...3))
        try again.commit()
        #expect(try WriteAheadLog(directory: dir).recover().entries == entries(1...3))
    }
}

@Suite struct ZlibTests {
    @Test func crcMatchesZlib() {
        #expect(Zlib.crc32(Array("123456789".utf8)) == 0xCBF4_3926)  // the standard check value
    }
}
