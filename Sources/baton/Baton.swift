import ArgumentParser
import BatonServer
import BatonStorage
import Foundation
import Logging
import ServiceLifecycle

@main
struct Baton: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "A coordinator for background work: locks with leases and fencing tokens, and jobs.",
        subcommands: [Dev.self, Serve.self])
}

struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func makeLogger() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        var logger = Logger(label: "baton")
        logger.logLevel = level
        return logger
    }
}

extension Baton {
    struct Dev: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one node with defaults for trying Baton out (127.0.0.1:7700, in memory).",
            discussion: """
                Without --data-dir, state lives in memory only: it is gone when the node stops. \
                With --data-dir, the node keeps a write-ahead log and snapshots there and survives \
                restarts. Stop with Ctrl-C.
                """)

        @Option(help: "Address to listen on (another than loopback needs --insecure: dev has no TLS and no authentication).")
        var host = "127.0.0.1"

        @Flag(help: "Listen on an address other than loopback although anyone who reaches it may do anything.")
        var insecure = false

        @Option(help: "Port to listen on (0 picks a free port).")
        var port = 7700

        @Option(help: "Keep state on disk in this directory (default: in memory).")
        var dataDir: String?

        @Option(help: "Port of the Prometheus endpoint, GET /metrics (0 picks a free one).")
        var metricsPort = 9770

        @Flag(help: "Serve no metrics endpoint.")
        var noMetrics = false

        @Option(help: "Also serve Baton over HTTP/2 (h2c, prior knowledge) on this port.")
        var http2Port: Int?

        @Option(help: "With --data-dir: 'always' syncs every write before answering; 'none' never syncs.")
        var sync: String = "always"

        @OptionGroup var log: LogOptions

        func run() async throws {
            var configuration = NodeConfiguration.inMemory
            configuration.host = host
            configuration.port = port
            configuration.dataDirectory = dataDir
            configuration.metricsPort = noMetrics ? nil : metricsPort
            configuration.http2Port = http2Port
            configuration.insecure = insecure
            guard let mode = WriteAheadLog.SyncMode(rawValue: sync) else {
                throw ValidationError("--sync must be 'always' or 'none'")
            }
            configuration.sync = mode
            try await serve(configuration, logger: try log.makeLogger())
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a node from a configuration file.",
            discussion: """
                The file is JSON; every key is optional. The node is durable: it keeps its log and \
                snapshots in dataDirectory (default ./baton-data) and syncs before it answers. Example:

                  {"nodeID": "baton-1", "host": "0.0.0.0", "port": 7700,
                   "dataDirectory": "/var/lib/baton", "sync": "always",
                   "tls": {"certificateFile": "/etc/baton/n1.pem",
                           "keyFile": "/etc/baton/n1-key.pem"},
                   "auth": {"adminTokenFile": "/etc/baton/admin.token"}}

                On an address other than loopback the node refuses to start without tls and auth \
                (and peerTLS in a cluster), unless the file says "insecure": true. SIGHUP reads \
                the certificates again. See docs/operating.md, "Running a node" and "Securing a cluster".
                """)

        @Option(help: "Path of the JSON configuration file.")
        var config: String

        @OptionGroup var log: LogOptions

        func run() async throws {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: config))
            } catch {
                throw ValidationError("cannot read \(config): \(error.localizedDescription)")
            }
            let configuration: NodeConfiguration
            do {
                configuration = try NodeConfiguration.decode(json: data)
            } catch {
                throw ValidationError("\(config): \(error)")
            }
            try await serve(configuration, logger: try log.makeLogger())
        }
    }
}

func serve(_ configuration: NodeConfiguration, logger: Logger) async throws {
    let problems = configuration.validate()
    guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }
    if let exposure = configuration.exposure {
        guard configuration.insecure else {
            throw ValidationError(
                "\(exposure): anyone who reaches it could do anything. Secure it (docs/operating.md, \"Securing a cluster\"; deploy/make-certs.sh), listen on 127.0.0.1, or say \"insecure\": true (baton dev: --insecure)")
        }
        logger.warning("insecure: \(exposure); anyone who reaches it may do anything")
    }
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: try BatonNodeService(configuration: configuration, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    try await group.run()
}
