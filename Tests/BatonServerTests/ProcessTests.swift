import BatonClient
import BatonCore
import BatonProtocol
import BatonRaft
import BatonTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import BatonServer

@Suite(.timeLimit(.minutes(1))) struct ProcessTests {
    /// A node whose output the test reads.
    func launch(_ arguments: [String]) throws -> (Process, Pipe) {
        let output = Pipe()
        return (try launchNode(arguments, output: .pipe(output)), output)
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func devNodeServesThenStopsGracefullyOnSignal(signal: Int32) async throws {
        let port = try await freePort()
        let (process, _) = try launch(["dev", "--port", "\(port)", "--no-metrics", "--log-level", "error"])
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "signals"))
        do {
            guard case .granted = try await client.acquireLock("k", ttl: .seconds(5)) else {
                Issue.record("not granted")
                return
            }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        kill(process.processIdentifier, signal)
        #expect(try await waitForExit(process) == 0)
        await client.shutdown()
    }

    @Test func serveRefusesABadConfigurationWithAClearMessage() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bad-\(UUID()).json")
        try #"{"port": 70000, "limits": {"minTTLMilliseconds": 0}}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (process, output) = try launch(["serve", "--config", file.path])
        let status = try await waitForExit(process)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status != 0)
        #expect(text.contains("port 70000 is outside 0...65535"))
        #expect(text.contains("minTTLMilliseconds must be above zero"))
    }

    /// On an address other than loopback, a node without TLS and authentication refuses to start and
    /// says what it lacks; `"insecure": true` lets it start, with a warning (issue 20, item 4).
    @Test func serveRefusesToListenOpenlyUnlessToldInsecure() async throws {
        let port = try await freePort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("baton-open-\(UUID()).json")
        let data = temporaryDataDirectory()
        try Unprivileged.makeDirectory(data)
        defer {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(atPath: data)
        }
        try #"{"host": "0.0.0.0", "port": \#(port), "metricsPort": 0, "dataDirectory": "\#(data)"}"#.write(to: file, atomically: true, encoding: .utf8)
        Unprivileged.handOver(file.path)
        let (refused, output) = try launch(["serve", "--config", file.path])
        #expect(try await waitForExit(refused) != 0)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("listens on 0.0.0.0 without TLS (tls), authentication (auth)") && text.contains("\"insecure\": true"), "\(text)")

        try #"{"host": "0.0.0.0", "port": \#(port), "metricsPort": 0, "dataDirectory": "\#(data)", "insecure": true}"#
            .write(to: file, atomically: true, encoding: .utf8)
        Unprivileged.handOver(file.path)
        let (process, log) = try launch(["serve", "--config", file.path, "--log-level", "warning"])
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "insecure"))
        _ = try await client.addJob(JobSpec(type: "open"))
        await client.shutdown()
        kill(process.processIdentifier, SIGTERM)
        #expect(try await waitForExit(process) == 0)
        let warning = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(warning.contains("insecure: the node listens on 0.0.0.0 without"), "\(warning)")

        // baton dev: loopback by default; another address needs --insecure.
        let (dev, devOutput) = try launch(["dev", "--host", "0.0.0.0", "--port", "\(port)", "--no-metrics"])
        #expect(try await waitForExit(dev) != 0)
        #expect(String(decoding: devOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("--insecure"))
    }

    @Test func serveReadsItsConfiguration() async throws {
        let port = try await freePort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("baton-\(UUID()).json")
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("baton-data-\(UUID())").path
        try #"{"nodeID": "from-file", "port": \#(port), "dataDirectory": "\#(data)", "metricsPort": 0, "limits": {"minTTLMilliseconds": 500}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(atPath: data)
        }
        let (process, _) = try launch(["serve", "--config", file.path, "--log-level", "error"])
        let client = BatonClient(configuration: .init(endpoints: ["127.0.0.1:\(port)"], name: "config"))
        await expectServerError(.invalidArgument) { _ = try await client.acquireLock("k", ttl: .milliseconds(400)) }
        kill(process.processIdentifier, SIGTERM)
        #expect(try await waitForExit(process) == 0)
        await client.shutdown()
    }
}

@Suite(.timeLimit(.minutes(1))) struct ClientBehaviourTests {
    @Test func clientReconnectsToARestartedNode() async throws {
        let first = try await TestNode.start()
        let port = first.port
        let client = first.client()
        _ = try await client.addJob(JobSpec(type: "t"))
        try await first.stop()
        let second = try await TestNode.start { $0.port = port }
        let (id, created) = try await client.addJob(JobSpec(type: "t"))
        #expect(created && id == JobID(1))  // a new, empty node
        await client.shutdown()
        try await second.stop()
    }

    @Test func requestToASilentNodeTimesOut() async throws {
        // A listener that accepts and never answers.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        var config = BatonClient.Configuration(endpoints: ["127.0.0.1:\(silent.localAddress!.port!)"])
        config.requestTimeout = .milliseconds(200)
        config.retryTimeout = .milliseconds(500)
        let client = BatonClient(configuration: config)
        await #expect(throws: BatonClientError.timedOut) { _ = try await client.getLock("k") }
        await client.shutdown()
        try await silent.close()
    }

    @Test func unreachableNodeFailsToConnect() async throws {
        let port = try await freePort()
        var config = BatonClient.Configuration(endpoints: ["127.0.0.1:\(port)"])
        config.retryTimeout = .milliseconds(300)
        let client = BatonClient(configuration: config)
        let error = await #expect(throws: BatonClientError.self) { _ = try await client.getLock("k") }
        if case .connectFailed = error {} else { Issue.record("expected connectFailed, got \(String(describing: error))") }
        await client.shutdown()
    }

    @Test func cancelledCallStopsWaiting() async throws {
        try await withNode { node in
            let client = node.client()
            let claim = Task { try await client.claimJob(types: ["never"], wait: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(100))
            claim.cancel()
            // Cancelled, the call ends with an error; had it kept waiting, it would end with no job.
            let result = await claim.result
            guard case .failure = result else {
                Issue.record("the cancelled claim was not stopped: \(result)")
                return
            }
            await client.shutdown()
        }
    }

    @Test func endpointsParse() {
        #expect(Endpoint("10.0.0.1:7701") == Endpoint(host: "10.0.0.1", port: 7701))
        #expect(Endpoint("baton-1") == Endpoint(host: "baton-1", port: 7700))
        #expect(Endpoint("host:0") == nil)
        #expect(Endpoint(":7700") == nil)
        #expect(Endpoint("a:b:c") == nil)
    }
}

@Suite struct ConfigurationTests {
    /// The example configurations in deploy/ are valid, and name each host as a member of one cluster.
    @Test func deployExamplesAreValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var clusters: [[NodeConfiguration.ClusterMember]] = []
        for i in 1...3 {
            let data = try Data(contentsOf: root.appendingPathComponent("deploy/three-hosts/baton-\(i).json"))
            let configuration = try NodeConfiguration.decode(json: data)
            #expect(configuration.validate().isEmpty, "baton-\(i).json: \(configuration.validate())")
            #expect(configuration.membership?.me == NodeIndex(UInt64(i)))
            clusters.append(configuration.cluster ?? [])
        }
        #expect(Set(clusters).count == 1)
    }

    @Test func clusterRulesAreChecked() throws {
        var c = NodeConfiguration()
        c.dataDirectory = "d"
        c.cluster = [.init(nodeID: "a", host: "h", port: 1, raftPort: 2), .init(nodeID: "b", host: "h", port: 3, raftPort: 4)]
        #expect(c.validate().contains { $0.contains("1, 3, 5 or 7") })
        #expect(c.validate().contains { $0.contains("not in cluster") })
        c.dataDirectory = nil
        #expect(c.validate().contains { $0.contains("dataDirectory") })
    }

    /// A member's `http2Port` in the cluster list is what the others name to HTTP/2 clients: it
    /// must be the port the member serves.
    @Test func aMembersHTTP2PortMatchesItsOwn() throws {
        let json = #"""
            {"nodeID": "a", "dataDirectory": "d", "http2Port": 7701, "cluster": [
              {"nodeID": "a", "host": "h", "port": 1, "raftPort": 2, "http2Port": 7702},
              {"nodeID": "b", "host": "h", "port": 3, "raftPort": 4}, {"nodeID": "c", "host": "h", "port": 5, "raftPort": 6}]}
            """#
        var c = try NodeConfiguration.decode(json: Data(json.utf8))
        #expect(c.cluster?.first?.http2Address == "h:7702")
        #expect(c.cluster?.last?.http2Address == nil)
        #expect(c.validate() == ["cluster gives a http2Port 7702, but its own http2Port is 7701"])
        c.http2Port = 7702
        #expect(c.validate().isEmpty)
        c.http2Port = nil
        #expect(c.validate() == ["cluster gives a http2Port 7702, but its own http2Port is not set"])
    }

    @Test func emptyFileMeansDefaults() throws {
        // One set of defaults: a file that names nothing is the struct's defaults, a durable node.
        #expect(try NodeConfiguration.decode(json: Data("{}".utf8)) == NodeConfiguration())
        #expect(NodeConfiguration().dataDirectory == "baton-data" && NodeConfiguration().metricsPort == 9770)
        #expect(NodeConfiguration.Limits() == NodeConfiguration().limits)
        #expect(NodeConfiguration().stateMachine == StateMachine.Configuration())
        // An explicit null keeps nothing on disk; before, it fell back to ./baton-data.
        #expect(try NodeConfiguration.decode(json: Data(#"{"dataDirectory": null}"#.utf8)).dataDirectory == nil)
    }

    @Test func partialLimitsKeepOtherDefaults() throws {
        let c = try NodeConfiguration.decode(json: Data(#"{"limits": {"minTTLMilliseconds": 500}}"#.utf8))
        #expect(c.limits.minTTLMilliseconds == 500 && c.limits.maxTTLMilliseconds == 86_400_000)
    }

    @Test func slowLogWriteThresholdIsConfigurable() throws {
        #expect(try NodeConfiguration.decode(json: Data(#"{"slowLogWriteMilliseconds": 250}"#.utf8)).slowLogWriteMilliseconds == 250)
        let zero = try NodeConfiguration.decode(json: Data(#"{"slowLogWriteMilliseconds": 0}"#.utf8))
        #expect(zero.validate().contains { $0.contains("slowLogWriteMilliseconds") })
    }

    /// The example file in docs/operating.md, under "Running a node", is valid and names every key but
    /// `cluster`, `tls`, `peerTLS` and `auth` (which have examples of their own), so the documentation keeps up with the code.
    @Test func theREADMEExampleNamesEveryKey() throws {
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/operating.md"),
            encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Running a node").dropFirst().first)
        let example = try #require(section.components(separatedBy: "```json\n").dropFirst().first?.components(separatedBy: "```").first)
        let configuration = try NodeConfiguration.decode(json: Data(example.utf8))
        #expect(configuration.validate().isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(example.utf8)) as? [String: Any])
        let limits = try #require(object["limits"] as? [String: Any])
        #expect(Set(object.keys).union(["cluster", "tls", "auth", "peerTLS"]) == Set(NodeConfiguration.CodingKeys.allCases.map(\.stringValue)))
        #expect(Set(limits.keys) == Set(NodeConfiguration.Limits.CodingKeys.allCases.map(\.stringValue)))
        // The example shows the defaults, but for the ones a real deployment changes.
        var defaults = NodeConfiguration()
        defaults.host = configuration.host
        defaults.dataDirectory = configuration.dataDirectory
        defaults.metricsPort = configuration.metricsPort
        defaults.http2Port = configuration.http2Port
        #expect(configuration == defaults)
    }

    @Test func quotasAreConfigurable() throws {
        let c = try NodeConfiguration.decode(json: Data(#"{"limits": {"maxJobs": 10, "maxJobBytes": 2000000, "maxLocks": 5, "maxClients": 7}}"#.utf8))
        #expect(c.validate().isEmpty)
        #expect(c.stateMachine.maxJobs == 10 && c.stateMachine.maxJobBytes == 2_000_000 && c.stateMachine.maxLocks == 5)
        #expect(c.stateMachine.maxClients == 7)
        let defaults = NodeConfiguration().stateMachine
        #expect(defaults.maxJobs == 1_000_000 && defaults.maxJobBytes == 1 << 30 && defaults.maxLocks == 1_000_000)
        let bad = try NodeConfiguration.decode(json: Data(#"{"limits": {"maxJobs": 0, "maxJobBytes": 1000, "maxLocks": 0, "maxClients": 0}}"#.utf8))
        let problems = bad.validate()
        for key in ["limits.maxJobs", "limits.maxJobBytes must be at least maxFrameSize", "limits.maxLocks", "limits.maxClients"] {
            #expect(problems.contains { $0.contains(key) }, "\(problems)")
        }
    }

    @Test func absentClientGraceIsConfigurable() throws {
        #expect(try NodeConfiguration.decode(json: Data(#"{"absentClientGraceMilliseconds": 2500}"#.utf8)).absentClientGraceMilliseconds == 2500)
        #expect(NodeConfiguration().absentClientGraceMilliseconds == 10_000)
        let zero = try NodeConfiguration.decode(json: Data(#"{"absentClientGraceMilliseconds": 0}"#.utf8))
        #expect(zero.validate().contains { $0.contains("absentClientGraceMilliseconds") })
    }

    @Test(arguments: [
        (#"{"prot": 1}"#, "unknown key: prot", ConfigurationError.Code.unknownKey),
        (#"{"limits": {"minTTL": 1}}"#, "unknown key: limits.minTTL", .unknownKey),
        (#"{"port": "x"}"#, "'port' must be Int", .wrongType),
        (#"[1]"#, "the top level must be an object", .notJSON),
        (#"{"#, "not valid JSON", .notJSON),
    ])
    func badFilesAreRefusedClearly(json: String, message: String, code: ConfigurationError.Code) {
        do {
            _ = try NodeConfiguration.decode(json: Data(json.utf8))
            Issue.record("accepted \(json)")
        } catch let error as ConfigurationError {
            #expect(error.code == code && "\(error)".contains(message), "\(error)")
        } catch {
            Issue.record("not a ConfigurationError: \(error)")
        }
    }
}
