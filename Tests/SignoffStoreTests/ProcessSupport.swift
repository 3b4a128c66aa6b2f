import Foundation
import Synchronization
import Testing

/// The StoreBenchmark executable (built next to the test bundle by `swift build`).
func storeBenchmarkExecutable() throws -> URL {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("StoreBenchmark"),
        URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/StoreBenchmark"),
    ]
    for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url }
    throw TestSetupError("StoreBenchmark is not built next to the tests (looked in \(candidates.map(\.path))); run scripts/test, which builds every target first")
}

/// A child process whose stdout lines are collected as they arrive.
final class ChildProcess: Sendable {
    let process: Process
    private let lines = Mutex<[String]>([])
    private let partial = Mutex<String>("")
    let name: String

    init(_ name: String, arguments: [String]) throws {
        self.name = name
        let process = Process()
        process.executableURL = try storeBenchmarkExecutable()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        self.process = process
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            self?.append(data)
        }
        try process.run()
    }

    private func append(_ data: Data) {
        let complete: [String] = partial.withLock { buffer in
            buffer += String(decoding: data, as: UTF8.self)
            var parts = buffer.components(separatedBy: "\n")
            buffer = parts.removeLast()
            return parts
        }
        lines.withLock { $0 += complete }
    }

    var output: [String] { lines.withLock { $0 } }

    /// Waits until a line satisfies `predicate`; fails the test with the output so far on timeout.
    @discardableResult
    func waitForLine(_ what: String, timeout: Double = 60, _ predicate: @escaping (String) -> Bool) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.first(where: predicate) { return line }
            if !process.isRunning, let line = output.first(where: predicate) { return line }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSetupError("\(name) printed no line \(what) within \(timeout)s; it printed: \(output.suffix(20))")
    }

    /// Waits for the process to exit (it exits by itself when idle).
    func waitForExit(timeout: Double = 60) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                throw TestSetupError("\(name) did not exit within \(timeout)s; it printed: \(output.suffix(20))")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        // Let the pipe drain.
        try await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}

/// A PostgreSQL cluster of its own, for the test that restarts the server (restarting the shared
/// test cluster would break every other test running at the same time).
struct PrivateCluster: Sendable {
    let dir: String
    let bin: String
    let port: Int

    var url: String { "postgresql://postgres@/postgres?host=\(dir)&port=\(port)" }

    static func start() async throws -> PrivateCluster {
        guard let bin = ProcessInfo.processInfo.environment["PG_TEST_BIN"], !bin.isEmpty else {
            throw TestSetupError("PG_TEST_BIN is not set: the server-restart test needs PostgreSQL's server binaries; run scripts/test")
        }
        let dir = "/tmp/signoff-pgr-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        if getuid() == 0 { try run("/bin/chown", ["postgres:", dir]) }
        let cluster = PrivateCluster(dir: dir, bin: bin, port: Int.random(in: 20_000..<60_000))
        try cluster.asPostgres("\(bin)/initdb", ["-D", "\(dir)/data", "-U", "postgres", "-A", "trust", "--no-sync"])
        try cluster.pgctl(["start", "-w", "-l", "\(dir)/log", "-o", "-k \(dir) -p \(cluster.port) -c listen_addresses='' -c fsync=off"])
        return cluster
    }

    func restart() throws {
        try pgctl(["restart", "-m", "fast", "-w", "-l", "\(dir)/log", "-o", "-k \(dir) -p \(port) -c listen_addresses='' -c fsync=off"])
    }

    func stop() {
        try? pgctl(["stop", "-m", "immediate"])
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func pgctl(_ arguments: [String]) throws {
        try asPostgres("\(bin)/pg_ctl", ["-D", "\(dir)/data"] + arguments)
    }

    private func asPostgres(_ tool: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    /// Runs a tool to completion with posix_spawn, closing every inherited descriptor above stderr:
    /// the server pg_ctl starts would otherwise hold Foundation's process-watching sockets open and
    /// no test would see its child processes end.
    static func run(_ tool: String, _ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // glibc has posix_spawn_file_actions_addclosefrom_np, but Swift's Glibc module does not export it.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            throw TestSetupError("this C library lacks posix_spawn_file_actions_addclosefrom_np (glibc 2.34+ needed)")
        }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard rc == 0 else { throw TestSetupError("could not start \(tool): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            throw TestSetupError("\(tool) \(arguments.joined(separator: " ")) failed with status \(status) (its errors are on the test's stderr)")
        }
    }
}
