import BatonClient
import BatonTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three member hosts and a client host, each a network namespace with an address of its own,
/// joined by veth pairs to a bridge in a namespace of its own: the cluster of `deploy/three-hosts`,
/// on one machine. The addresses exist only inside these namespaces, which have no route out.
/// Creating them needs root; the members then run as an unprivileged user, and everything is
/// removed by `destroy()` (and, for a run that died, by the next `create()`).
final class Hosts: Sendable {
    /// Every name this harness gives starts with it, so leftovers are found and removed.
    static let family = "btf"
    let prefix: String
    /// The /24 the hosts share.
    static let subnet = "10.213.77"

    var members: [String] { (1...3).map { "\(prefix)-m\($0)" } }
    var client: String { "\(prefix)-cl" }
    var bridge: String { "\(prefix)-br" }
    func address(ofMember i: Int) -> String { "\(Self.subnet).\(i + 1)" }
    static let clientAddress = "\(subnet).100"

    private init(prefix: String) { self.prefix = prefix }

    /// Creates the namespaces, the bridge and the links, and checks that no namespace has a way out.
    static func create() throws -> Hosts {
        removeLeftovers()
        let hosts = Hosts(prefix: "\(family)\(getpid() % 100_000)")
        do {
            try hosts.build()
        } catch {
            hosts.destroy()
            throw error
        }
        return hosts
    }

    private func build() throws {
        for ns in members + [client, bridge] { try ip("netns", "add", ns) }
        try ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        try ip("-n", bridge, "link", "set", "br0", "up")
        let hosts = members.enumerated().map { ($1, address(ofMember: $0)) } + [(client, Self.clientAddress)]
        for (i, (ns, address)) in hosts.enumerated() {
            let outside = "\(prefix)v\(i)"
            try ip("link", "add", outside, "netns", bridge, "type", "veth", "peer", "name", "eth0", "netns", ns)
            try ip("-n", bridge, "link", "set", outside, "master", "br0", "up")
            try ip("-n", ns, "addr", "add", "\(address)/24", "dev", "eth0")
            try ip("-n", ns, "link", "set", "eth0", "up")
            try ip("-n", ns, "link", "set", "lo", "up")
        }
        for ns in members + [client] {
            let routes = try Self.output("/usr/sbin/ip", ["-n", ns, "route", "show"])
            guard !routes.contains("default"), routes.split(separator: "\n").allSatisfy({ $0.hasPrefix("\(Self.subnet).0/24") }) else {
                throw HostsError("namespace \(ns) has a route out: \(routes)")
            }
        }
    }

    /// Removes the namespaces (their links and rules go with them).
    func destroy() {
        for ns in members + [client, bridge] { _ = try? Self.output("/usr/sbin/ip", ["netns", "delete", ns]) }
    }

    /// Namespaces of this family that a run which died left behind.
    static func removeLeftovers() {
        guard let list = try? output("/usr/sbin/ip", ["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            if name.hasPrefix(family), name.contains("-") { _ = try? output("/usr/sbin/ip", ["netns", "delete", name]) }
        }
    }

    /// Runs a command inside `ns` and waits for it; throws with its output if it fails.
    func exec(in ns: String, _ command: [String]) throws {
        _ = try Self.output("/usr/sbin/ip", ["netns", "exec", ns] + command)
    }

    /// An event loop group whose one thread lives in the client host's namespace, so every
    /// connection a `BatonClient` opens on it leaves from there.
    func clientEventLoopGroup() throws -> MultiThreadedEventLoopGroup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let path = "/var/run/netns/\(client)"
        let joined = try group.next().submit { () -> Int32 in
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return errno }
            defer { close(fd) }
            return enterNamespace(fd, cloneNewNet) == 0 ? 0 : errno
        }.wait()
        guard joined == 0 else {
            try? group.syncShutdownGracefully()
            throw HostsError("could not enter \(path): errno \(joined)")
        }
        return group
    }

    private func ip(_ arguments: String...) throws {
        _ = try Self.output("/usr/sbin/ip", arguments)
    }

    @discardableResult
    static func output(_ tool: String, _ arguments: [String]) throws -> String {
        let (status, text) = try runTool(tool, arguments)
        guard status == 0 else { throw HostsError("\(tool) \(arguments.joined(separator: " ")) failed (\(status)): \(text)") }
        return text
    }
}

struct HostsError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// setns(2), which Glibc's Swift module leaves out (it is a GNU extension), and its CLONE_NEWNET.
@_silgen_name("setns") private func enterNamespace(_ fd: Int32, _ type: Int32) -> Int32
private let cloneNewNet: Int32 = 0x4000_0000
