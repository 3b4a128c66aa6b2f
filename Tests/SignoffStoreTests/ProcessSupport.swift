import Foundation
import SignoffTestSupport
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
    let process: Subprocess
    private let lines = Mutex<[String]>([])
    private let partial = Mutex<String>("")
    let name: String

    init(_ name: String, arguments: [String]) throws {
        self.name = name
        process = try Subprocess(try storeBenchmarkExecutable().path, arguments, stdout: .pipe)
        // Read stdout to its end on a thread of its own (the reads block).
        let fd = process.takeStdout()
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                append(Data(buffer[0..<n]))
            }
            close(fd)
        }.start()
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
        return process.terminationStatus ?? -1
    }

    func kill() {
        process.terminate(SIGKILL)
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

    /// Runs a tool to completion. Its stdout goes to /dev/null and its stderr to the tests' own,
    /// never to a pipe: the server `pg_ctl start` leaves running inherits them, and a pipe would
    /// stay open for the server's whole life.
    static func run(_ tool: String, _ arguments: [String]) throws {
        let status = try Subprocess(tool, arguments, stdout: .null, stderr: .inherit).waitUntilExit()
        guard status == 0 else {
            throw TestSetupError("\(tool) \(arguments.joined(separator: " ")) failed with status \(status) (its errors are on the test's stderr)")
        }
    }
}
