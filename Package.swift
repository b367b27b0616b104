// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "baton",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BatonClient", targets: ["BatonClient"]),
        .library(name: "BatonProtocol", targets: ["BatonProtocol"]),
        .executable(name: "baton", targets: ["baton"]),
        .executable(name: "image-worker", targets: ["ImageWorker"]),
        .executable(name: "baton-bench", targets: ["baton-bench"]),
        .executable(name: "batonctl", targets: ["batonctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // The wire contract: frames, messages, error codes, encode/decode.
        .target(
            name: "BatonProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The deterministic state machine: locks, jobs, leases, client sessions.
        .target(
            name: "BatonCore",
            dependencies: [
                "BatonProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // zlib (Debian: zlib1g-dev) for CRC32 and deflate.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libnghttp2 (Debian: libnghttp2-dev), the node's HTTP/2: the engine of curl, httpd and nghttpd.
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // The vocabulary of the replicated log (terms, indexes, entries, hard state); the Raft core joins it.
        .target(name: "BatonRaft"),
        // Write-ahead log segments and compressed snapshots on disk.
        .target(name: "BatonStorage", dependencies: ["BatonRaft", "CZlib"]),
        // The node's logic as a value: Raft, the state machine and the cluster's clock, stepped by
        // events and answering with actions. No I/O; the simulator runs it.
        .target(
            name: "BatonNode",
            dependencies: [
                "BatonCore", "BatonRaft", "BatonProtocol", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The node: NIO listener, node runtime, configuration.
        .target(
            name: "BatonServer",
            dependencies: [
                "BatonNode",
                "BatonCore",
                "BatonStorage",
                "BatonRaft",
                "BatonProtocol",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The client's rules without I/O (issue 39): what the Swift client and the simulator's
        // clients share, and the Python client by the traces of Clients/testdata.
        .target(name: "BatonClientCore", dependencies: ["BatonProtocol"]),
        // The async Swift client library used by worker services.
        .target(
            name: "BatonClient",
            dependencies: [
                "BatonProtocol", "BatonClientCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "baton",
            dependencies: [
                "BatonServer",
                "BatonStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The admin CLI.
        .executableTarget(
            name: "batonctl",
            dependencies: [
                "BatonClient",
                "BatonProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ImageWorker",
            dependencies: [
                "BatonClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/ImageWorker"
        ),
        // The load generator: workloads, target dialects (Baton, Redis, beanstalkd), measurement.
        .target(
            name: "BatonBenchKit",
            dependencies: [
                "BatonProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Benchmarks/BatonBenchKit"
        ),
        .executableTarget(
            name: "baton-bench",
            dependencies: [
                "BatonBenchKit",
                "BatonClient",
                "BatonProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/baton-bench"
        ),
        .testTarget(
            name: "BatonBenchKitTests",
            dependencies: [
                "BatonBenchKit", "BatonServer", "BatonProtocol", "BatonTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "BatonProtocolTests",
            dependencies: [
                "BatonProtocol", "BatonTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BatonClientCoreTests",
            dependencies: ["BatonClientCore", "BatonProtocol"]
        ),
        .testTarget(
            name: "BatonStorageTests",
            dependencies: ["BatonStorage", "BatonRaft"]
        ),
        .testTarget(
            name: "BatonRaftTests",
            dependencies: ["BatonRaft", "BatonCore", "BatonProtocol", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["testdata"]  // expected traces, read from the source tree by `Trace`
        ),
        // What the test targets share (docs/testing.md): the node and cluster launchers, free
        // ports, temporary directories, `eventually`, the heavy tests' turns, running long
        // simulations off Swift's cooperative pool.
        .target(
            name: "BatonTestSupport",
            dependencies: [
                "BatonServer", "BatonClient", "BatonProtocol", "BatonRaft",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/BatonTestSupport"
        ),
        .testTarget(
            name: "BatonNodeTests",
            dependencies: [
                "BatonNode", "BatonRaft", "BatonCore", "BatonProtocol", "BatonClientCore", "BatonTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BatonCoreTests",
            dependencies: ["BatonCore", "BatonProtocol", "BatonRaft", "BatonTestSupport"]
        ),
        .testTarget(
            name: "BatonServerTests",
            dependencies: [
                "BatonServer",
                "BatonNode",
                "BatonClient",
                "BatonProtocol",
                "BatonCore",
                "BatonStorage",
                "BatonTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
