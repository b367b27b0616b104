/// The bytes of a golden frame file (`Protocol/golden/*.hex`): pairs of hex digits separated by
/// spaces, a `#` starting a comment to the end of its line.
public func parseHex(_ text: String) -> [UInt8] {
    text.split(separator: "\n").flatMap { line -> [UInt8] in
        let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return code.split(separator: " ").compactMap { UInt8($0, radix: 16) }
    }
}
