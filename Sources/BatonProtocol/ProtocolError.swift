/// A frame or message that cannot be decoded. Carries the error code the node answers with.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.name): \(message)" }

    public static func truncated(_ field: String) -> ProtocolError {
        ProtocolError(.malformedFrame, "field '\(field)' runs past the end of the frame")
    }
}
