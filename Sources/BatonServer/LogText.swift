/// Client-supplied text made safe for the node's log (issue 33): a line break in a lock key wrote a
/// forged line into the log, and 300 refused acquires with distinct 60 KB keys grew it by 17 MiB.
/// Control characters are escaped (`\n`, `\r`, `\t`, `\0`, others as `\u{1b}`), backslashes doubled,
/// and the text is cut to `limit` bytes of UTF-8, saying how long it was.
enum LogText {
    /// The most bytes of one client-supplied string that reach a log line.
    static let limit = 200

    static func escaped(_ text: String, limit: Int = LogText.limit) -> String {
        var out = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let piece: String
            switch scalar {
            case "\n": piece = "\\n"
            case "\r": piece = "\\r"
            case "\t": piece = "\\t"
            case "\0": piece = "\\0"
            case "\\": piece = "\\\\"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    piece = "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    piece = String(scalar)
                }
            }
            let n = piece.utf8.count
            if bytes + n > limit {
                return out + "…(\(text.utf8.count) bytes)"
            }
            out += piece
            bytes += n
        }
        return out
    }
}
