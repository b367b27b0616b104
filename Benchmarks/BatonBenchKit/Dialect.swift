import NIOCore

/// How one target writes steps and reads replies. One value per connection.
public protocol Dialect: Sendable {
    /// Bytes to send once on connect, before any step (a handshake), and whether a reply to them comes.
    mutating func handshake(into buffer: inout ByteBuffer) -> Bool
    /// Parses the handshake's reply; nil until it is complete.
    mutating func readHandshake(_ buffer: inout ByteBuffer) throws -> Bool?
    /// Writes `step` for in-flight slot `slot`.
    mutating func write(_ step: Step, slot: Int, into buffer: inout ByteBuffer)
    /// Parses one reply, or returns nil until one is complete. `pending` holds the slots with requests
    /// in flight, oldest first, for protocols that answer in order.
    mutating func read(_ buffer: inout ByteBuffer, pending: inout [Int]) throws -> (slot: Int, outcome: Outcome)?
    /// Whether a lock step can wait in line on the server (otherwise a busy lock is retried at once).
    var canWait: Bool { get }
}

public struct DialectError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Array where Element == Int {
    mutating func popOldest() throws -> Int {
        guard !isEmpty else { throw DialectError("a reply came with no request in flight") }
        return removeFirst()
    }
}

extension ByteBuffer {
    /// Reads one `\r\n`-terminated line (without the terminator), or nil if it is not all here.
    mutating func readCRLFLine() -> String? {
        guard let i = readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let length = i - readerIndex + 1
        guard var line = readString(length: length) else { return nil }
        line.removeLast()
        if line.hasSuffix("\r") { line.removeLast() }
        return line
    }
}
