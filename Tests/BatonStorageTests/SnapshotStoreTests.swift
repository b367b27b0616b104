import BatonRaft
import Foundation
import Testing

@testable import BatonStorage

/// Two snapshot saves at once (issue 34): the log writer installing the leader's snapshot while the
/// thread pool saves the member's own. The interleaving is injected: the hook `beforeRename` of one
/// save runs the other save whole, at the worst moment (its file written, not yet renamed).
@Suite struct SnapshotStoreTests {
    @Test func roundTripCompressed() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SnapshotStore(directory: dir)
        #expect(try store.loadNewest() == nil)
        let data = Array(repeating: Array("lock/key-0001 holder worker-a ".utf8), count: 1000).flatMap { $0 }
        let outcome = try store.save(Snapshot(index: LogIndex(10), term: Term(1), data: data))
        guard case .saved(let size) = outcome else { Issue.record("not saved: \(outcome)"); return }
        #expect(size < data.count / 10)  // deflate did its work
        #expect(try store.loadNewest() == Snapshot(index: LogIndex(10), term: Term(1), data: data))
    }

    @Test func damagedNewestFallsBackAndOnlyTwoAreKept() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SnapshotStore(directory: dir)
        for i in UInt64(1)...3 { try store.save(Snapshot(index: LogIndex(i), term: Term(1), data: [UInt8(i)])) }
        #expect(try store.snapshotFiles().count == 2)
        var newest = try FileIO.readAll(store.path(LogIndex(3)))
        newest[newest.count - 1] ^= 0xFF
        try Data(newest).write(to: URL(fileURLWithPath: store.path(LogIndex(3))))
        var skipped: [String] = []
        #expect(try store.loadNewest { skipped.append($0) }?.index == LogIndex(2))
        #expect(skipped.count == 1 && skipped[0].contains("checksum"))
    }

    func snapshot(_ index: UInt64, fill: UInt8) -> Snapshot {
        Snapshot(index: LogIndex(index), term: Term(1), data: [UInt8](repeating: fill, count: 10_000 + Int(index)))
    }

    /// The newer snapshot is saved inside the older one's save: the older one is dropped (not renamed
    /// over the newer state), no save fails, and the newest file on disk is the newer snapshot, intact.
    @Test func anOlderSaveFinishingLastIsDropped() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = try SnapshotStore(directory: dir)
        let inner = store
        store.beforeRename = { index in
            if index == LogIndex(2034) { #expect(throws: Never.self) { try inner.save(snapshot(0x899 + 2000, fill: 2)) } }
        }
        let outcome = try store.save(snapshot(2034, fill: 1))
        #expect(outcome == .superseded(by: LogIndex(0x899 + 2000)))
        let newest = try #require(try store.loadNewest())
        #expect(newest == snapshot(0x899 + 2000, fill: 2))
        let files = try store.snapshotFiles()
        #expect(files == [SnapshotStore.fileName(LogIndex(0x899 + 2000))], "the dropped save left a file")
        #expect(try FileIO.list(dir).filter { $0.hasSuffix(".tmp") } == [], "a temporary file was left behind")
    }

    /// The older snapshot is saved inside the newer one's save: both are saved, each file holds its
    /// own snapshot's bytes, and the newer one is the newest.
    @Test func aNewerSaveFinishingLastIsKept() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = try SnapshotStore(directory: dir)
        let inner = store
        store.beforeRename = { index in
            if index == LogIndex(3000) { #expect(throws: Never.self) { try inner.save(snapshot(2034, fill: 1)) } }
        }
        let outcome = try store.save(snapshot(3000, fill: 3))
        #expect(outcome == .saved(bytes: try FileIO.readAll(store.path(LogIndex(3000))).count))
        #expect(try store.loadNewest() == snapshot(3000, fill: 3))
        #expect(try SnapshotStore.decode(try FileIO.readAll(store.path(LogIndex(2034))), path: "2034") == snapshot(2034, fill: 1))
    }

    /// A save of an index already saved changes nothing and is not an error.
    @Test func theSameIndexTwiceIsSavedOnce() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SnapshotStore(directory: dir)
        _ = try store.save(snapshot(10, fill: 1))
        #expect(try store.save(snapshot(10, fill: 1)) == .superseded(by: LogIndex(10)))
        #expect(try store.loadNewest() == snapshot(10, fill: 1))
    }

    /// Temporary files a kill left behind are removed when the store opens.
    @Test func temporaryFilesOfAKilledSaveAreRemoved() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: "\(dir)/snapshot-0000000000000007.1.tmp", contents: Data([1, 2, 3]))
        _ = FileManager.default.createFile(atPath: "\(dir)/snapshot.tmp", contents: Data([1, 2, 3]))
        _ = try SnapshotStore(directory: dir)
        #expect(try FileIO.list(dir).filter { $0.hasSuffix(".tmp") } == [])
    }
}
