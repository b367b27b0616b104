import ArgumentParser
import BatonClient
import BatonProtocol
import Foundation

@main
struct Batonctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batonctl",
        abstract: "Inspect and administer a Baton cluster: who holds what, which jobs are stuck, which node leads.",
        discussion: """
            Exit codes: 0 ok; 1 the operation was refused (for example, the lock is not held); \
            2 usage; 3 the cluster cannot be reached. Errors go to standard error, one line each.

            Endpoints come from --endpoints, else BATON_ENDPOINTS, else 127.0.0.1:7700. TLS, as \
            etcdctl names it: --cacert (BATON_CACERT) is the CA the nodes' certificates chain to; \
            --cert and --key (BATON_CERT, BATON_KEY) are this client's, for nodes that ask for one. \
            --token (BATON_TOKEN) is the bearer token batonctl authenticates with, on a cluster \
            with authentication on.

            Answers come from the state the node has applied: every command it has acknowledged \
            is in them. In a cluster, status asks every endpoint about itself; every other command \
            goes to the leader, wherever it is among the endpoints.
            """,
        subcommands: [
            Status.self, Locks.self, Leases.self, Jobs.self, Schedules.self, Watch.self, Users.self, Roles.self, Tokens.self,
        ])

    /// Runs the command and turns every failure into one line on stderr and the documented exit code.
    static func main() async {
        do {
            var command = try parseAsRoot(globalOptionsLast(Array(CommandLine.arguments.dropFirst())))
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error as CtlError {
            FileHandle.standardError.write(Data("batonctl: \(error.message)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch let error as BatonClientError {
            let ctl = CtlError(error)
            FileHandle.standardError.write(Data("batonctl: \(ctl.message)\n".utf8))
            Foundation.exit(ctl.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            var message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            FileHandle.standardError.write(Data("batonctl: \(message)\n".utf8))
            Foundation.exit(2)
        }
        Foundation.exit(0)
    }
}

/// The options every subcommand takes (`GlobalOptions`).
let globalOptionNames: Set<String> = ["--endpoints", "--output", "--cacert", "--cert", "--key", "--token"]

/// Moves the global options (`--endpoints`, `--output`, TLS) behind the subcommand, so they may be
/// written anywhere: `batonctl --output json locks list` works like `batonctl locks list --output json`.
func globalOptionsLast(_ arguments: [String]) -> [String] {
    var rest: [String] = []
    var global: [String] = []
    var i = 0
    while i < arguments.count {
        let a = arguments[i]
        if a == "--" {
            rest += arguments[i...]
            break
        }
        if globalOptionNames.contains(a), i + 1 < arguments.count {
            global += [a, arguments[i + 1]]
            i += 2
            continue
        }
        if let name = a.split(separator: "=", maxSplits: 1).first, a.contains("="), globalOptionNames.contains(String(name)) {
            global.append(a)
        } else {
            rest.append(a)
        }
        i += 1
    }
    return rest + global
}

/// A failure with its exit code.
struct CtlError: Error {
    var message: String
    var exitCode: Int32

    static func refused(_ message: String) -> CtlError { CtlError(message: message, exitCode: 1) }

    init(message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    init(_ error: BatonClientError) {
        switch error {
        case .connectFailed, .timedOut, .connectionClosed, .shutDown:
            self.init(message: "cannot reach the cluster: \(error)", exitCode: 3)
        case .server(let e) where e.code.isRetriable:
            self.init(message: "cannot reach the cluster: \(error)", exitCode: 3)
        case .server(let e) where e.code == .unauthenticated:
            self.init(message: "\(error) (give a token with --token or BATON_TOKEN)", exitCode: 1)
        default:
            self.init(message: "\(error)", exitCode: 1)
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct GlobalOptions: ParsableArguments {
    @Option(help: "Nodes to ask, comma-separated host:port (default: $BATON_ENDPOINTS or 127.0.0.1:7700).")
    var endpoints: String?

    @Option(help: "Output format: table or json.")
    var output: OutputFormat = .table

    @Option(help: "TLS: the CA file (PEM) the nodes' certificates chain to (default: $BATON_CACERT).")
    var cacert: String?

    @Option(help: "TLS: this client's certificate file (PEM), for nodes that ask for one (default: $BATON_CERT).")
    var cert: String?

    @Option(help: "TLS: this client's key file (PEM) (default: $BATON_KEY).")
    var key: String?

    @Option(help: "The bearer token to authenticate with (default: $BATON_TOKEN).")
    var token: String?

    /// TLS from the options, else the environment; nil (plain TCP) when neither names a file.
    func tls() throws -> BatonClient.TLS? {
        let environment = ProcessInfo.processInfo.environment
        let ca = cacert ?? environment["BATON_CACERT"]
        let certificate = cert ?? environment["BATON_CERT"]
        let privateKey = key ?? environment["BATON_KEY"]
        guard ca != nil || certificate != nil || privateKey != nil else { return nil }
        guard (certificate == nil) == (privateKey == nil) else {
            throw ValidationError("--cert and --key go together")
        }
        return BatonClient.TLS(caFile: ca, certificateFile: certificate, keyFile: privateKey)
    }

    /// `--endpoints`, else `BATON_ENDPOINTS`, else the local default; each checked.
    func endpointList() throws -> [String] {
        let text = endpoints ?? ProcessInfo.processInfo.environment["BATON_ENDPOINTS"] ?? "127.0.0.1:7700"
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for e in list where Endpoint(e) == nil { throw ValidationError("'\(e)' is not host:port") }
        return list
    }

    func client(endpoint: String? = nil) throws -> BatonClient {
        let list = try endpoint.map { [$0] } ?? endpointList()
        var config = BatonClient.Configuration(endpoints: list, name: "batonctl")
        config.tls = try tls()
        config.token = token ?? ProcessInfo.processInfo.environment["BATON_TOKEN"]
        config.requestTimeout = .seconds(3)
        config.retryTimeout = .seconds(2)
        config.connectTimeout = .seconds(1)
        return BatonClient(configuration: config)
    }

    /// Runs `body` with a client, always shutting it down.
    func withClient<T>(endpoint: String? = nil, _ body: (BatonClient) async throws -> T) async throws -> T {
        let c = try client(endpoint: endpoint)
        do {
            let result = try await body(c)
            await c.shutdown()
            return result
        } catch {
            await c.shutdown()
            throw error
        }
    }

    func emit<T: Encodable>(_ value: T, table: () -> String) {
        switch output {
        case .table: print(table())
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try! encoder.encode(value), as: UTF8.self))
        }
    }
}

/// Parses durations as operators write them: 500ms, 10s, 5m, 2h, 7d.
struct DurationArgument: ExpressibleByArgument {
    var milliseconds: UInt64

    init?(argument: String) {
        let units: [(String, UInt64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            let number = argument.dropLast(suffix.count)
            if let n = UInt64(number), !number.isEmpty {
                milliseconds = n * factor
                return
            }
        }
        return nil
    }

    var duration: Duration { .milliseconds(Int64(milliseconds)) }
}
