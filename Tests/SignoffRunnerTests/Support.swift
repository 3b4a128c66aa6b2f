import Foundation
@testable import SignoffRunner
import SignoffTestSupport

/// Helpers shared by the runner's tests.
enum TestSupport {
    /// The checkout's root (the folder holding Package.swift).
    static var packageRoot: String { TestEnvironment.repositoryRoot }

    /// A fresh empty folder under the system temp directory.
    static func scratch(_ name: String = "signoff-test") throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    struct ProcessResult {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion and captures its output (see `Subprocess` for why not `Process`).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    currentDirectory: String? = nil, stdin: String? = nil) throws -> ProcessResult {
        let result = try Subprocess.run(executable, arguments, environment: environment, directory: currentDirectory,
                                        input: stdin.map { Array($0.utf8) } ?? [])
        return ProcessResult(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    /// The path of a program on PATH, or nil.
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

extension TestSupport {
    /// The built `signoff` binary, next to the test bundle in the build folder.
    static func signoffBinary() throws -> String {
        var candidates: [String] = []
        let arg0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        candidates.append(arg0.path)
        candidates.append(arg0.deletingLastPathComponent().path)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        candidates.append(packageRoot + "/.build/debug")
        for dir in candidates {
            let path = dir + "/signoff"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw RunnerError("test.no_binary", "no built signoff binary near \(candidates); run `swift build` (scripts/test does) first")
    }
}
