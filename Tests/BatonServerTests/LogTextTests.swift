import Testing

@testable import BatonServer

@Suite struct LogTextTests {
    @Test func controlCharactersAreEscapedAndLongTextIsCut() {
        #expect(LogText.escaped("a\nb\rc\td\0e\\f\u{1b}[31m\u{85}\u{2028}") == "a\\nb\\rc\\td\\0e\\\\f\\u{1b}[31m\\u{85}\\u{2028}")
        #expect(LogText.escaped("lock/ключ") == "lock/ключ")
        let long = String(repeating: "k", count: 60_000)
        #expect(LogText.escaped(long) == String(repeating: "k", count: LogText.limit) + "…(60000 bytes)")
        #expect(LogText.escaped(String(repeating: "é", count: 150)).utf8.count <= LogText.limit + 20)
    }
}
