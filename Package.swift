// swift-tools-version:6.0
import PackageDescription

// Layers, top to bottom (arrows only point down):
//   signoff (executable: @main only) → SignoffCLI (commands) → SignoffRunner (jobs, queue loop, importer)
//   → SignoffStore / SignoffMail / SignoffLLM → SignoffEngine (Foundation only, no I/O)
//   C at the edges: CSQLite, CLibpq, CCurl (system libraries with small static-inline shims).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

// The allocator of the programs we ship and measure: jemalloc (Debian's libjemalloc-dev) on Linux.
// The import allocates and frees small objects at a high rate on every thread; against glibc's
// malloc it spends 9% less CPU per imported message (ARCHITECTURE.md, "Allocator").
let productLinkerSettings: [LinkerSetting] = [
    .linkedLibrary("jemalloc", .when(platforms: [.linux])),
]

let package = Package(
    name: "Signoff",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "signoff", targets: ["signoff"]),
        .library(name: "SignoffEngine", targets: ["SignoffEngine"]),
        .library(name: "SignoffCLI", targets: ["SignoffCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C at the edges.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibpq", path: "Sources/CLibpq", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),

        // The engine: Foundation only, no I/O.
        .target(name: "SignoffEngine", swiftSettings: swiftSettings),

        // Durable runs.
        .target(name: "SignoffStore",
                dependencies: ["SignoffEngine", "CSQLite", "CLibpq",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),

        // Mail out and in.
        .target(name: "SignoffMail",
                dependencies: ["CCurl",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Mustache", package: "swift-mustache"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),

        // LLM chat client.
        .target(name: "SignoffLLM",
                dependencies: ["SignoffEngine", "CCurl",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),

        // The batch runner.
        .target(name: "SignoffRunner",
                dependencies: ["SignoffEngine", "SignoffStore", "SignoffMail", "SignoffLLM",
                               .product(name: "Yams", package: "Yams"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),

        // The CLI as a library, so a Swift program can embed it with its own executors.
        .target(name: "SignoffCLI",
                dependencies: ["SignoffRunner", "SignoffExamples",
                               .product(name: "ArgumentParser", package: "swift-argument-parser"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .executableTarget(name: "signoff", dependencies: ["SignoffCLI"], swiftSettings: swiftSettings,
                         linkerSettings: productLinkerSettings),

        // The seeds' programs, written against the engine.
        .target(name: "SignoffExamples", dependencies: ["SignoffEngine"], path: "Examples/SignoffExamples",
                swiftSettings: swiftSettings),

        // The content workflow driven as an agent through the function-call bridge, with a real chat client.
        .executableTarget(name: "content-agent", dependencies: ["SignoffExamples", "SignoffLLM", "SignoffEngine"],
                          path: "Examples/ContentAgent", swiftSettings: swiftSettings),

        // Benchmarks: executables that print JSON.
        .executableTarget(name: "EngineBenchmark", dependencies: ["SignoffEngine"],
                          path: "Benchmarks/EngineBenchmark", swiftSettings: swiftSettings,
                          linkerSettings: productLinkerSettings),
        .executableTarget(name: "StoreBenchmark", dependencies: ["SignoffStore", "SignoffEngine"],
                          path: "Benchmarks/StoreBenchmark", exclude: ["run.sh"], swiftSettings: swiftSettings,
                          linkerSettings: productLinkerSettings),
        .executableTarget(name: "MailBenchmark", dependencies: ["SignoffMail"],
                          path: "Benchmarks/MailBenchmark", swiftSettings: swiftSettings,
                          linkerSettings: productLinkerSettings),

        .executableTarget(name: "ImportBenchmark",
                          dependencies: ["SignoffRunner", "SignoffStore", "SignoffMail", "SignoffTestSupport"],
                          path: "Benchmarks/ImportBenchmark", swiftSettings: swiftSettings,
                          linkerSettings: productLinkerSettings),

        // A bounded random-mutation fuzzer for the MIME reader and the decision grammar.
        .executableTarget(name: "MailFuzz", dependencies: ["SignoffMail", "SignoffTestSupport"], path: "Fuzz/MailFuzz",
                          swiftSettings: swiftSettings),

        // Tests (and the fuzzer's seeded generator).
        .target(name: "SignoffTestSupport", dependencies: ["SignoffRunner"], path: "Tests/SignoffTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "SignoffEngineTests", dependencies: ["SignoffEngine", "SignoffExamples"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SignoffStoreTests", dependencies: ["SignoffStore", "SignoffEngine", "SignoffTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SignoffMailTests", dependencies: ["SignoffMail", "SignoffTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SignoffLLMTests", dependencies: ["SignoffLLM", "SignoffEngine", "SignoffExamples", "SignoffTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SignoffRunnerTests", dependencies: ["SignoffRunner", "SignoffCLI", "SignoffTestSupport"],
                    swiftSettings: swiftSettings),
    ]
)
