import Foundation
import Testing

/// The docs tree holds together (issue 37): every relative link in the Markdown files resolves to a
/// file (and, with `#`, to a heading in it), and the module map in docs/architecture.md names every
/// target of Package.swift.
@Suite struct DocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var documents: [String] {
        let top = ["README.md", "RELIABILITY.md", "BENCHMARKS.md", "Protocol/PROTOCOL.md", "Clients/python/README.md"]
        let docs = ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)) ?? [])
            .filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        return (top + docs).filter { FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path) }
    }

    /// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
    static func anchor(_ heading: String) -> String {
        String(heading.lowercased().compactMap { c -> Character? in
            if c == " " { return "-" }
            return c.isLetter || c.isNumber || c == "-" || c == "_" ? c : nil
        })
    }

    @Test func everyRelativeLinkResolves() throws {
        #expect(Self.documents.contains("docs/architecture.md"), "\(Self.documents)")
        for document in Self.documents {
            let url = Self.root.appendingPathComponent(document)
            let text = try String(contentsOf: url, encoding: .utf8)
            for match in text.matches(of: /\]\(([^)\s]+)\)/) {
                let target = String(match.1)
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") { continue }
                let pieces = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let file = pieces[0].isEmpty ? url : url.deletingLastPathComponent().appendingPathComponent(pieces[0])
                #expect(FileManager.default.fileExists(atPath: file.standardized.path), "\(document): \(target) does not exist")
                guard pieces.count == 2, file.pathExtension == "md", let linked = try? String(contentsOf: file, encoding: .utf8) else { continue }
                let anchors = linked.split(separator: "\n").filter { $0.hasPrefix("#") }
                    .map { Self.anchor($0.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)) }
                #expect(anchors.contains(pieces[1]), "\(document): \(target) names no heading of \(pieces[0].isEmpty ? document : pieces[0])")
            }
        }
    }

    @Test func theModuleMapNamesEveryTarget() throws {
        let package = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let targets = package.matches(of: /\.(?:target|executableTarget|systemLibrary|testTarget)\(\s*name: "([^"]+)"/).map { String($0.1) }
        #expect(targets.count > 15, "\(targets)")
        let map = try String(contentsOf: Self.root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        for target in targets { #expect(map.contains("\(target)/") || map.contains("target \(target)"), "docs/architecture.md does not name \(target)") }
    }
}
