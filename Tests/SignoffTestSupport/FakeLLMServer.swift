import Foundation

/// scripts/fake_llm_server.py (an OpenAI-compatible chat server) on a free loopback port: it
/// answers from a script and records every request, one JSON object a line.
public final class FakeLLMServer: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    public let port: Int
    /// The server's folder (its script and its record); tests may put files of their own there.
    public let directory: URL
    private let process: Subprocess

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var recordURL: URL { directory.appendingPathComponent("requests.jsonl") }

    /// Starts the server answering from `script` (the JSON text of the response list).
    public init(script: String) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-llm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let scriptURL = directory.appendingPathComponent("script.json")
        try Data(script.utf8).write(to: scriptURL)
        let python = TestEnvironment.stdlibPython
        let process = try Subprocess(python, [TestEnvironment.repositoryRoot + "/scripts/fake_llm_server.py",
                                              "--script", scriptURL.path, "--record", directory.appendingPathComponent("requests.jsonl").path],
                                     stdout: .pipe)
        self.process = process
        // Read the first line (the port) off the cooperative pool: the read blocks.
        let line: String = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: process.readLine() ?? "") }
        }
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw Failure(message: "fake_llm_server.py did not print its port (got \(line.debugDescription)); is \(python) installed?")
        }
        self.port = port
    }

    /// Starts the server answering `replies` in turn, each reporting 12 prompt and 7 completion tokens.
    public convenience init(replies: [String]) async throws {
        let script = try JSONSerialization.data(withJSONObject: replies.map { ["reply": $0, "usage": [12, 7]] })
        try await self.init(script: String(decoding: script, as: UTF8.self))
    }

    /// The recorded requests, one JSON object each, in order.
    public func recordedLines() -> [Data] {
        guard let data = FileManager.default.contents(atPath: recordURL.path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).map { Data($0) }
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
