import Foundation

/// Where the tests find the checkout and the test Python.
public enum TestEnvironment {
    /// The checkout's root (this file is Tests/SignoffTestSupport/TestEnvironment.swift).
    public static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The venv Python with aiosmtpd that scripts/test exports as SIGNOFF_PYTHON.
    public static func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"], !python.isEmpty else {
            throw Subprocess.Failure("SIGNOFF_PYTHON is not set: run scripts/test (it creates a venv with aiosmtpd and exports it)")
        }
        return python
    }

    /// The Python for stdlib-only scripts: SIGNOFF_PYTHON, else `python3` looked up on PATH.
    public static var stdlibPython: String {
        ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
    }

    /// A fresh folder under the system temp directory.
    public static func temporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "signoff-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
