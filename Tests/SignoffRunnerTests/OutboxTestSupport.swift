import Foundation
import Testing
import SignoffStore
import SignoffTestSupport

/// The real services the outbox tests need: an aiosmtpd server (scripts/smtp_server.py) and a
/// fresh database on either backend.
enum OutboxTestEnvironment {
    struct Missing: Error, CustomStringConvertible { var description: String }

    static func require(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            Issue.record("\(variable) is not set: run scripts/test (it starts PostgreSQL and a Python venv with aiosmtpd)")
            throw Missing(description: "\(variable) unset")
        }
        return value
    }


    /// A store on a fresh database: a new SQLite file, or a new PostgreSQL database created on
    /// the server at SIGNOFF_TEST_POSTGRES.
    static func freshStore(_ backend: String) async throws -> any RunStore {
        if backend == "sqlite" {
            return try await openStore(url: "sqlite:" + TestEnvironment.temporaryDirectory("db") + "/signoff.db")
        }
        let base = try require("SIGNOFF_TEST_POSTGRES")
        let name = "outbox_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let psql = try Subprocess.run("/usr/bin/env", ["psql", base, "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \(name)"])
        guard psql.status == 0 else { throw Missing(description: "psql could not create database \(name): \(psql.stderr)") }
        guard var components = URLComponents(string: base) else { throw Missing(description: "bad SIGNOFF_TEST_POSTGRES") }
        components.path = "/" + name
        return try await openStore(url: components.string!)
    }
}

extension SMTPServer {
    /// Message-IDs of the messages in Maildir/new (one per delivered copy).
    func deliveredMessageIDs() throws -> [String] {
        let dir = maildir + "/new"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return try names.sorted().compactMap { name in
            let text = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
            return text.components(separatedBy: "\n").first { $0.lowercased().hasPrefix("message-id:") }
                .map { $0.dropFirst("message-id:".count).trimmingCharacters(in: .whitespacesAndNewlines) }
        }
    }
}
