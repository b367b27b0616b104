import BatonTestSupport
import Testing

/// `--help` is the first manual an operator reads: its prose must wrap as paragraphs at 80 columns,
/// not as source lines broken twice (once in the source, once by the terminal's width).
@Suite(.timeLimit(.minutes(2))) struct HelpTextTests {
    @Test(arguments: ["baton", "batonctl", "baton-bench"]) func everyHelpTextWrapsAsParagraphs(executable: String) async throws {
        var commands: [[String]] = [[]]
        var checked = 0
        while let command = commands.popLast() {
            let help = try await built(executable, command + ["--help"])
            #expect(help.status == 0, "\(executable) \(command) --help: \(help.err)")
            let problems = Self.raggedBreaks(in: help.out)
            #expect(problems.isEmpty, "\(executable) \(command.joined(separator: " ")) --help breaks a paragraph: \(problems)")
            commands += Self.subcommands(in: help.out).map { command + [$0] }
            checked += 1
        }
        #expect(checked > 2)  // the walk found subcommands
    }

    /// The line pairs of the text before USAGE that show a hard break inside a paragraph: the next
    /// line's first word would have fit on the line before it (the parser keeps lines under
    /// `columns`), or a list item ran over its width.
    static func raggedBreaks(in help: String, columns: Int = 80) -> [String] {
        let prose = help.components(separatedBy: "\nUSAGE:")[0].split(separator: "\n", omittingEmptySubsequences: false)
        var problems: [String] = []
        for (line, next) in zip(prose, prose.dropFirst()) where !line.isEmpty && !next.isEmpty {
            let indented = line.hasPrefix(" ")
            let nextIndented = next.hasPrefix(" ")
            let firstWord = next.split(separator: " ").first.map(\.count) ?? 0
            if (indented && !nextIndented) || (!indented && !nextIndented && line.count + 1 + firstWord < columns) {
                problems.append("\(line) ⏎ \(next)")
            }
        }
        return problems
    }

    static func subcommands(in help: String) -> [String] {
        guard let section = help.components(separatedBy: "\nSUBCOMMANDS:\n").dropFirst().first else { return [] }
        return section.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { return nil }
            return name == "help" || name == "See" ? nil : String(name)  // "  See '… help <subcommand>'"
        }
    }

    @Test func aBrokenParagraphIsFound() {
        let full = String(repeating: "word ", count: 15) + "word"  // 79 columns: nothing more fits
        let fine = "OVERVIEW: x\n\n\(full)\nwords after it.\n  item   short\n  item   short\n\nUSAGE: x"
        #expect(Self.raggedBreaks(in: fine).isEmpty)
        let broken = "OVERVIEW: x\n\n\(full)\nbroken\nagain.\n\nUSAGE: x"  // "again." fits after "broken"
        #expect(Self.raggedBreaks(in: broken) == ["broken ⏎ again."])
        let wrappedItem = "OVERVIEW: x\n\n  item   \(full)\nwraps\n\nUSAGE: x"
        #expect(Self.raggedBreaks(in: wrappedItem).count == 1)
    }
}
