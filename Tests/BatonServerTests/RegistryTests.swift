import BatonCore
import BatonProtocol
import BatonTestSupport
import Foundation
import NIOCore
import Testing

@testable import BatonServer

/// `Protocol/registry.json` is the one list of the protocol's facts: opcodes, error codes with their
/// names and whether they are retriable, limits with their defaults, and the golden frames that pin
/// each message's layout. The Swift sources and PROTOCOL.md's tables must say the same (issue 35);
/// the Python client is checked against it by `Clients/python/tests/test_registry.py`.
@Suite struct RegistryTests {
    struct Registry: Decodable {
        struct Frame: Decodable {
            var header_after_length: Int
            var header_size: Int
            var error_opcode: String
            var reply_bit: String
        }
        struct Operation: Decodable {
            var opcode: String
            var name: String
            var kind: String
            var golden: String
            var code: UInt8 { UInt8(opcode.dropFirst(2), radix: 16)! }
        }
        struct Error: Decodable {
            var code: UInt16
            var name: String
            var retriable: Bool
        }
        struct Limit: Decodable {
            var name: String
            var machine: String?
            var node: String?
            var `default`: Int
            var doc: String
        }
        var version: UInt16
        var versions_spoken: [UInt16]
        var frame: Frame
        var opcodes: [Operation]
        var errors: [Error]
        var limits: [Limit]
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let registry: Registry

    init() throws {
        registry = try JSONDecoder().decode(Registry.self, from: Data(contentsOf: Self.root.appendingPathComponent("Protocol/registry.json")))
    }

    @Test func theSwiftOpcodesAgree() throws {
        #expect(Set(Opcode.requests.map(\.rawValue)) == Set(registry.opcodes.map(\.code)), "Opcode.requests")
        #expect(Opcode.requests.count == registry.opcodes.count, "Opcode.requests lists one twice")
        for op in registry.opcodes {
            #expect(Opcode(rawValue: op.code).name == op.name, "0x\(String(op.code, radix: 16)): Swift names it \(Opcode(rawValue: op.code).name)")
            #expect(Opcode(rawValue: op.code).reply.rawValue == op.code | 0x80)
            // The golden request decodes as the kind the registry gives: its layout is the golden's.
            let hex = try String(contentsOf: Self.root.appendingPathComponent("Protocol/golden/\(op.golden).request.hex"), encoding: .utf8)
            var buffer = ByteBuffer(bytes: parseHex(hex))
            var decoder = FrameDecoder()
            let frame = try #require(try decoder.decode(buffer: &buffer), "\(op.golden).request.hex is not a frame")
            #expect(frame.opcode.rawValue == op.code, "\(op.golden).request.hex carries another opcode")
            #expect(Self.kind(try Request.decode(opcode: frame.opcode, body: frame.body)) == op.kind, "\(op.name)")
            let replies = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Protocol/golden").path)
            #expect(replies.contains { $0.hasPrefix("\(op.golden).reply") }, "no golden reply for \(op.name)")
        }
        #expect(Opcode.error.rawValue == UInt8(registry.frame.error_opcode.dropFirst(2), radix: 16))
        #expect(Frame.headerAfterLength == registry.frame.header_after_length)
        #expect(Frame.headerSize == registry.frame.header_size)
        #expect(batonProtocolVersion == registry.version)
        #expect(Array(batonProtocolVersions) == registry.versions_spoken)
    }

    @Test func theSwiftErrorCodesAgree() {
        #expect(ErrorCode.all.map(\.rawValue) == registry.errors.map(\.code))
        for error in registry.errors {
            let code = ErrorCode(rawValue: error.code)
            #expect(code.name == error.name, "code \(error.code)")
            #expect(code.isRetriable == error.retriable, "\(error.name)")
        }
    }

    /// Every limit's default is the one the node declares (each declared once, in its own type).
    @Test func theDefaultsAgree() {
        let machine = Self.values(of: StateMachine.Configuration())
        let node = Self.values(of: NodeConfiguration())
        let others: [String: Int] = [
            "max_tokens_per_user": AuthStore.maxTokensPerUser, "max_permissions_per_role": AuthStore.maxPermissionsPerRole,
            "max_token_length": TokenHash.maxTokenBytes, "pre_auth_frame": ClientConnectionHandler.maxPendingFrameSize,
        ]
        for limit in registry.limits {
            let declared = limit.machine.map { machine[$0] } ?? limit.node.map { node[$0] } ?? others[limit.name]
            #expect(declared == limit.default, "\(limit.name): the registry says \(limit.default), the node \(String(describing: declared))")
        }
        #expect(Frame.defaultMaxSize == registry.limits.first { $0.name == "max_frame_size" }?.default)
    }

    @Test func protocolMDsTablesAgree() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Protocol/PROTOCOL.md"), encoding: .utf8)
        // Section 6's table: | code | `NAME` | retriable |
        var documented: [UInt16: (String, Bool)] = [:]
        for line in text.split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count > 4, let code = UInt16(cells[1]), cells[2].hasPrefix("`") else { continue }
            documented[code] = (cells[2].trimmingCharacters(in: CharacterSet(charactersIn: "`")), cells[3] == "**yes**")
        }
        #expect(documented.count == registry.errors.count, "section 6 lists \(documented.count) error codes")
        for error in registry.errors {
            #expect(documented[error.code]?.0 == error.name, "section 6, code \(error.code)")
            #expect(documented[error.code]?.1 == error.retriable, "section 6, \(error.name) retriable")
        }
        // Section 9: every opcode under a heading `NAME — `0xNN`` or in a table row `| `0xNN` | NAME |`.
        var opcodes: [UInt8: String] = [:]
        let heading = /([A-Z_]+) — `0x([0-9A-F]{2})`/
        let row = /\| `0x([0-9A-F]{2})` \| ([A-Z_]+) \|/
        for match in text.matches(of: heading) { opcodes[UInt8(match.2, radix: 16)!] = String(match.1) }
        for match in text.matches(of: row) { opcodes[UInt8(match.1, radix: 16)!] = String(match.2) }
        #expect(opcodes.count == registry.opcodes.count, "section 9 names \(opcodes.count) opcodes: \(opcodes.values.sorted())")
        for op in registry.opcodes { #expect(opcodes[op.code] == op.name, "section 9, \(op.opcode)") }
        for limit in registry.limits { #expect(text.contains(limit.doc), "PROTOCOL.md does not say \(limit.name): \(limit.doc)") }
    }

    /// "Upgrades" in docs/operating.md names the peer protocol versions this build speaks (issue 36: it said 2
    /// and 3 while the members logged `peer.protocol=5`).
    @Test func theReadmeNamesThePeerVersionsSpoken() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("docs/operating.md"), encoding: .utf8)
        let match = try #require(readme.firstMatch(of: /This build speaks versions (\d+) to (\d+)/), "docs/operating.md no longer says which peer versions")
        #expect(UInt16(match.1) == PeerPreamble.lowest && UInt16(match.2) == PeerPreamble.highest, "README: \(match.0)")
    }

    /// The request's kind as the registry names it.
    static func kind(_ request: Request) -> String {
        switch request {
        case .hello: "hello"
        case .ping: "ping"
        case .auth: "auth"
        case .command: "command"
        case .query: "query"
        }
    }

    /// A configuration's integer settings by property name (durations in milliseconds).
    static func values(of configuration: Any) -> [String: Int] {
        var out: [String: Int] = [:]
        for child in Mirror(reflecting: configuration).children {
            guard let label = child.label else { continue }
            switch child.value {
            case let v as Int: out[label] = v
            case let v as UInt16: out[label] = Int(v)
            case let v as UInt32: out[label] = Int(v)
            case let v as Milliseconds: out[label] = Int(v.rawValue)
            default: break
            }
        }
        return out
    }
}
