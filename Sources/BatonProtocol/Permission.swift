/// One thing a role allows: actions on the locks or job types its pattern names, or on the cluster.
///
/// A pattern names one lock key or job type exactly, or, ending in `*`, every one that starts with
/// what comes before the `*` (`reports/*`; `*` alone names all). Cluster permissions have no pattern.
public struct Permission: Hashable, Sendable, CustomStringConvertible {
    public enum Resource: UInt8, Hashable, Sendable, CaseIterable {
        case lock = 1
        case job = 2
        case cluster = 3

        public var name: String {
            switch self {
            case .lock: "lock"
            case .job: "job"
            case .cluster: "cluster"
            }
        }
    }

    /// What may be done, as bits; which bits mean what depends on the resource.
    public struct Actions: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Locks: acquire, renew, release. Jobs: add.
        public static let write = Actions(rawValue: 1)
        /// Locks and jobs: get and list.
        public static let read = Actions(rawValue: 2)
        /// Jobs: claim, extend, complete, fail, abort.
        public static let work = Actions(rawValue: 4)
        /// Jobs: delete, requeue, purge. Cluster: everything (force release, leases, users and roles).
        public static let admin = Actions(rawValue: 8)

        /// The actions each resource knows.
        public static func known(for resource: Resource) -> Actions {
            switch resource {
            case .lock: [.write, .read]
            case .job: [.write, .read, .work, .admin]
            case .cluster: [.admin]
            }
        }

        /// The name of each action as batonctl and messages spell it, for `resource`.
        public static func names(for resource: Resource) -> [(Actions, String)] {
            switch resource {
            case .lock: [(.write, "write"), (.read, "read")]
            case .job: [(.write, "add"), (.read, "read"), (.work, "work"), (.admin, "admin")]
            case .cluster: [(.admin, "admin")]
            }
        }
    }

    public var resource: Resource
    public var actions: Actions
    /// Empty for the cluster.
    public var pattern: String

    public init(_ resource: Resource, _ actions: Actions, _ pattern: String = "") {
        self.resource = resource
        self.actions = actions
        self.pattern = pattern
    }

    /// Whether the pattern names `name`.
    public func covers(_ name: String) -> Bool {
        guard pattern.hasSuffix("*") else { return pattern == name }
        return name.hasPrefix(pattern.dropLast())
    }

    /// Whether the pattern names every name that starts with `prefix` (a listing by prefix).
    public func coversPrefix(_ prefix: String) -> Bool {
        guard pattern.hasSuffix("*") else { return false }
        return prefix.hasPrefix(pattern.dropLast())
    }

    /// `resource:action,action:pattern`, as batonctl takes it: `job:work,read:thumbnail*`, `cluster:admin`.
    public var description: String {
        let names = Actions.names(for: resource).filter { actions.contains($0.0) }.map(\.1).joined(separator: ",")
        return resource == .cluster ? "\(resource.name):\(names)" : "\(resource.name):\(names):\(pattern)"
    }

    /// Reads the form `description` writes; nil with a reason when it is not one.
    public static func parse(_ text: String) -> Result<Permission, ErrorReply> {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let resource = Resource.allCases.first(where: { $0.name == parts[0] }) else {
            return .failure(ErrorReply(.invalidArgument, "'\(text)': a permission is lock:ACTIONS:PATTERN, job:ACTIONS:PATTERN or cluster:admin"))
        }
        var actions: Actions = []
        for name in parts[1].split(separator: ",") {
            guard let action = Actions.names(for: resource).first(where: { $0.1 == name }) else {
                let known = Actions.names(for: resource).map(\.1).joined(separator: ", ")
                return .failure(ErrorReply(.invalidArgument, "'\(text)': \(resource.name) actions are \(known)"))
            }
            actions.insert(action.0)
        }
        guard !actions.isEmpty else { return .failure(ErrorReply(.invalidArgument, "'\(text)': no action named")) }
        if resource == .cluster {
            guard parts.count == 2 else { return .failure(ErrorReply(.invalidArgument, "'\(text)': cluster permissions have no pattern")) }
            return .success(Permission(.cluster, actions))
        }
        guard parts.count == 3, !parts[2].isEmpty else {
            return .failure(ErrorReply(.invalidArgument, "'\(text)': name the keys or types, as a name or a prefix ending in '*'"))
        }
        return .success(Permission(resource, actions, parts[2]))
    }
}
