import Foundation
import Testing

/// Paths and processes the mail tests share: the repository root, the test Python, a real
/// aiosmtpd server (scripts/smtp_server.py) on a free loopback port.
enum MailTestEnvironment {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The venv Python with aiosmtpd that scripts/test exports; a failure telling how to get it.
    static func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"], !python.isEmpty else {
            Issue.record("SIGNOFF_PYTHON is not set: run scripts/test (it creates a venv with aiosmtpd and exports it)")
            throw SkipReason.missingService
        }
        return python
    }

    /// Python for stdlib-only scripts: SIGNOFF_PYTHON, else python3 from PATH.
    static func stdlibPython() -> String {
        ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/env"
    }

    static func stdlibPythonArguments(_ args: [String]) -> [String] {
        stdlibPython() == "/usr/bin/env" ? ["python3"] + args : args
    }

    /// Runs a stdlib Python script with `input` on stdin; returns stdout.
    static func runPython(script: String, input: [UInt8]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: stdlibPython())
        process.arguments = stdlibPythonArguments(["-c", script])
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("python failed (\(process.terminationStatus)): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func temporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "signoff-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

enum SkipReason: Error { case missingService }

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// scripts/smtp_server.py running on a free loopback port, delivering into `maildir`.
final class SMTPTestServer: @unchecked Sendable {  // immutable after init except the process, which only deinit/stop touch
    let port: Int
    let maildir: String
    private let process: Process
    private let stdinPipe: Pipe
    private let stderrPath: String

    init(_ flags: [String] = []) throws {
        let python = try MailTestEnvironment.python()
        let dir = try MailTestEnvironment.temporaryDirectory("smtp")
        maildir = dir + "/Maildir"
        stderrPath = dir + "/server.log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [MailTestEnvironment.repositoryRoot.path + "/scripts/smtp_server.py",
                             "--maildir", maildir, "--watch-stdin"] + flags
        stdinPipe = Pipe()
        let stdout = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
        // The first line on stdout is the port.
        var line = [UInt8]()
        let handle = stdout.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty || byte.first == 0x0A { break }
            line.append(contentsOf: byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw TestFailure("smtp_server.py did not print its port: \((try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")")
        }
        self.port = port
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            try? stdinPipe.fileHandleForWriting.close()
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// The server's log lines (one per transaction).
    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Messages delivered into Maildir/new, oldest first.
    func delivered() throws -> [[UInt8]] {
        let dir = maildir + "/new"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return try names.sorted().map { name in
            Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        }
    }

    /// Waits (briefly) until `count` messages are in Maildir/new.
    func waitForDelivery(count: Int, timeout: Duration = .seconds(5)) async throws -> [[UInt8]] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let messages = try delivered()
            if messages.count >= count { return messages }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try delivered()
    }
}

/// A self-signed certificate for localhost/127.0.0.1, made with openssl into a temp dir.
struct TestCertificate {
    let certificate: String
    let key: String

    static func make() throws -> TestCertificate {
        let dir = try MailTestEnvironment.temporaryDirectory("cert")
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                             "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("openssl could not make a test certificate") }
        return TestCertificate(certificate: cert, key: key)
    }
}
