import Foundation
import SignoffEngine
import SignoffLLM
import SignoffTestSupport

/// Runs scripts/fake_llm_server.py on a free loopback port for one test.
final class FakeLLMServer: Sendable {
    struct Recorded: Decodable {
        var index: Int
        var method: String
        var path: String
        var headers: [String: String]
        var body: JSONValue?

        /// Header lookup ignoring case (http.server keeps the client's spelling).
        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    let port: Int
    let directory: URL
    private let process: Subprocess
    private var recordURL: URL { directory.appendingPathComponent("requests.jsonl") }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the server answering from `script` (the JSON text of the response list).
    init(script: String) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-llm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let scriptURL = directory.appendingPathComponent("script.json")
        try Data(script.utf8).write(to: scriptURL)

        let serverPath = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/fake_llm_server.py").path
        let python = ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

        let process = try Subprocess(python, [serverPath, "--script", scriptURL.path,
                                              "--record", directory.appendingPathComponent("requests.jsonl").path],
                                     stdout: .pipe)
        self.process = process

        // Read the first line (the port) off the cooperative pool: the read blocks.
        let line: String = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: process.readLine() ?? "") }
        }
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw ServerFailure(message: "fake_llm_server.py did not print its port (got \(line.debugDescription)); is \(python) installed?")
        }
        self.port = port
    }

    struct ServerFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Every request received so far, in order.
    func requests() throws -> [Recorded] {
        guard let data = FileManager.default.contents(atPath: recordURL.path) else { return [] }
        return try String(decoding: data, as: UTF8.self)
            .split(separator: "\n")
            .map { try JSONDecoder().decode(Recorded.self, from: Data($0.utf8)) }
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Records the delays the client asked to sleep, without sleeping.
final class RecordingSleeper: @unchecked Sendable /* `delays` guarded by `lock` */ {
    private let lock = NSLock()
    private var _delays: [Duration] = []

    var delays: [Duration] {
        lock.withLock { _delays }
    }

    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] d in
            lock.withLock { _delays.append(d) }
        }
    }
}
