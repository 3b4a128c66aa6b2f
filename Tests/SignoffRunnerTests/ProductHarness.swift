import Foundation
import SignoffTestSupport
import Testing
@testable import SignoffRunner

/// The databases the whole-product tests run on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A scratch installation driven through the built `signoff` binary, as a user would.
struct Product {
    let dir: String
    let binary: String
    let database: String?
    var postgresName: String?

    /// `signoff init` in a fresh folder; on PostgreSQL, a fresh database from SIGNOFF_TEST_POSTGRES.
    static func make(_ backend: Backend) throws -> Product {
        let binary = try TestSupport.signoffBinary()
        let dir = try TestSupport.scratch("signoff-product")
        var database: String?
        var name: String?
        if backend == .postgres {
            let admin = try postgresAdmin()
            let db = "signoff_cli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            let psql = try #require(psqlPath(), "psql is needed for the PostgreSQL tests (apt-get install postgresql-client)")
            let r = try TestSupport.run(psql, [admin, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(db)"])
            #expect(r.status == 0, "CREATE DATABASE: \(r.stderr)")
            database = Self.url(admin, database: String(db))
            name = String(db)
        }
        var product = Product(dir: dir, binary: binary, database: database)
        product.postgresName = name
        let r = product.signoff("init", dir)
        #expect(r.status == 0, "signoff init failed: \(r.stderr)")
        return product
    }

    static func postgresAdmin() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SIGNOFF_TEST_POSTGRES"], !url.isEmpty else {
            throw RunnerError("test.no_postgres", "SIGNOFF_TEST_POSTGRES is not set: the PostgreSQL tests need a real server; run scripts/test")
        }
        return url
    }

    static func psqlPath() -> String? {
        if let bin = ProcessInfo.processInfo.environment["PG_TEST_BIN"], FileManager.default.isExecutableFile(atPath: bin + "/psql") {
            return bin + "/psql"
        }
        return TestSupport.which("psql")
    }

    /// The admin URL with another database name.
    static func url(_ admin: String, database: String) -> String {
        let parts = admin.split(separator: "?", maxSplits: 1).map(String.init)
        let head = parts[0]
        let schemeEnd = head.range(of: "://")!.upperBound
        let base = head[schemeEnd...].firstIndex(of: "/").map { String(head[..<$0]) } ?? head
        return base + "/" + database + (parts.count > 1 ? "?" + parts[1] : "")
    }

    /// Drops the PostgreSQL database and the folder.
    func cleanUp() {
        if let postgresName, let admin = try? Self.postgresAdmin(), let psql = Self.psqlPath() {
            _ = try? TestSupport.run(psql, [admin, "-qc", "DROP DATABASE IF EXISTS \(postgresName) WITH (FORCE)"])
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Runs `signoff ARGS` in the folder.
    @discardableResult
    func signoff(_ args: String...) -> TestSupport.ProcessResult { signoff(args) }

    func signoff(_ args: [String]) -> TestSupport.ProcessResult {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SIGNOFF_CONFIG")
        env.removeValue(forKey: "SIGNOFF_DATABASE")
        if let database { env["SIGNOFF_DATABASE"] = database }
        env["USER"] = "tester"
        do {
            return try TestSupport.run(binary, args, environment: env, currentDirectory: dir)
        } catch {
            return TestSupport.ProcessResult(status: -1, stdout: "", stderr: "\(error)")
        }
    }

    /// Runs and requires exit 0; returns stdout trimmed.
    @discardableResult
    func ok(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let r = signoff(args)
        #expect(r.status == 0, "signoff \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `--json` output parsed.
    func json(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) -> Any? {
        let r = signoff(args + ["--json"])
        #expect(r.status == 0, "signoff \(args.joined(separator: " ")) --json exited \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        return try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func runStatus(_ id: String) -> String? {
        (json("history", "--limit", "500") as? [[String: Any]])?.first { $0["id"] as? String == id }?["status"] as? String
    }

    func writeJob(_ name: String, _ text: String) throws {
        try text.write(toFile: dir + "/jobs/\(name).yaml", atomically: true, encoding: .utf8)
    }

    func writeScript(_ name: String, _ text: String) throws {
        let path = dir + "/jobs/scripts/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// The request mails in the outbox, oldest first.
    func outbox() -> [String] {
        let folder = dir + "/var/outbox"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.map { folder + "/" + $0 }
            .sorted { (try? FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date ?? .distantPast) ?? .distantPast
                    < (try? FileManager.default.attributesOfItem(atPath: $1)[.modificationDate] as? Date ?? .distantPast) ?? .distantPast }
            .map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "" }
    }

    /// The request mails (those carrying a reply token), oldest first.
    func requestMails() -> [String] {
        outbox().filter { $0.contains("Reply-To: approvals+") }
    }

    /// Drops a reviewer's reply to `mail` into the maildrop: From the reviewer, To the Reply-To
    /// address with the token, In-Reply-To the request, the decision above the quote.
    func reply(to mail: String, from reviewer: String, body decision: String) throws {
        let reply = ReviewerReply.text(to: mail, from: reviewer, body: decision)
        try reply.write(toFile: dir + "/var/maildrop/new/\(UUID().uuidString).eml", atomically: true, encoding: .utf8)
    }
}

/// Runs `body` with a fresh product installation, cleaning up afterwards.
func withProduct(_ backend: Backend, _ body: (Product) throws -> Void) throws {
    let product = try Product.make(backend)
    defer { product.cleanUp() }
    try body(product)
}
