import CSQLite
import Foundation
import Logging
@testable import SignoffStore
import Testing

struct ConnectionSettingsTests {
    @Test(arguments: [
        ("sqlite:/var/lib/signoff/signoff.db", StoreBackend.sqlite, "/var/lib/signoff/signoff.db"),
        ("sqlite:signoff.db", .sqlite, "signoff.db"),
        ("sqlite:///tmp/x.db", .sqlite, "/tmp/x.db"),
        ("postgres://signoff@db.internal/signoff", .postgres, "postgres://signoff@db.internal/signoff"),
        ("postgresql:///signoff?host=/run/postgresql", .postgres, "postgresql:///signoff?host=/run/postgresql"),
        ("host=/run/postgresql dbname=signoff", .postgres, "host=/run/postgresql dbname=signoff"),
        ("service=signoff", .postgres, "service=signoff"),
    ])
    func settingsNameTheirBackend(_ setting: String, _ backend: StoreBackend, _ location: String) throws {
        let target = try DatabaseTarget.parse(setting)
        #expect(target.backend == backend)
        #expect(target.location == location)
    }

    @Test(arguments: [
        "postgres://signoff:s3cret-pw@db.internal:5432/signoff",
        "postgresql://signoff@db.internal/signoff?sslmode=require&password=s3cret-pw",
        "host=db.internal user=signoff password=s3cret-pw dbname=signoff",
        "host=db.internal password = 's3cret-pw' dbname=signoff",
    ])
    func passwordsNeverAppearInTheRedactedForm(_ setting: String) throws {
        let target = try DatabaseTarget.parse(setting)
        #expect(!target.redacted.contains("s3cret-pw"))
        #expect(target.redacted.contains("***"))
        #expect(target.redacted.contains("db.internal"))
    }

    @Test func anUnknownSettingIsAClearError() {
        #expect(throws: StoreError.self) { try DatabaseTarget.parse("mysql-ish thing") }
        #expect(throws: StoreError.self) { try DatabaseTarget.parse("  ") }
    }

    @Test func aServerThatIsDownGivesAClearErrorWithoutThePassword() async throws {
        // A unix socket directory where no server listens.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("no-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = "postgresql://signoff:s3cret-pw@/signoff?host=\(dir.path)&port=5999&connect_timeout=2"
        do {
            let store = try await openStore(url: url, logger: Logger(label: "test"))
            await store.close()
            Issue.record("connecting to a server that is down must fail")
        } catch let error as StoreError {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("could not connect to PostgreSQL at"))
            #expect(error.message.contains("is the server running?"))
            #expect(error.message.contains("$SIGNOFF_DATABASE"))
            #expect(!error.message.contains("s3cret-pw"))
            #expect(!"\(error)".contains("s3cret-pw"))
        }
    }

    @Test func aSQLiteFileInAMissingFolderIsAClearError() async throws {
        do {
            let store = try await openStore(url: "sqlite:/nonexistent-\(UUID().uuidString)/signoff.db")
            await store.close()
            Issue.record("opening a database in a missing folder must fail")
        } catch let error as StoreError {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("folder"))
        }
    }

    /// The page size of the SQLite database at `path`.
    private func pageSize(_ path: String) throws -> Int {
        let conn = try SQLiteConnection(path: path)
        defer { conn.close() }
        return try conn.query("PRAGMA page_size").first?.int(0) ?? 0
    }

    @Test func aNewSQLiteDatabaseGets8KBPagesAndAnOlderOneKeepsItsOwn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let now = Date(timeIntervalSince1970: 1_790_000_000)

        let fresh = dir.appendingPathComponent("new.db").path
        let store = try await openStore(url: "sqlite:" + fresh)
        _ = try await store.enqueue(NewRun(job: "nightly"), now: now)
        await store.close()
        #expect(try pageSize(fresh) == 8192)

        // A database created with SQLite's default 4 KB pages (as every earlier version did): it
        // opens, migrates and works, and keeps its pages.
        let older = dir.appendingPathComponent("old.db").path
        var db: OpaquePointer?
        #expect(sqlite3_open(older, &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE keep (x)", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let reopened = try await openStore(url: "sqlite:" + older)
        let (run, created) = try await reopened.enqueue(NewRun(job: "nightly"), now: now)
        #expect(created)
        #expect(try await reopened.run(id: run.id)?.job == "nightly")
        await reopened.close()
        #expect(try pageSize(older) == 4096)
    }

    @Test func aClosedStoreSaysSo() async throws {
        let db = try await TestDatabase.make(.sqlite)
        defer { Task { await db.drop() } }
        let store = try await db.open()
        await store.close()
        await store.close()
        do {
            _ = try await store.run(id: "x")
            Issue.record("a closed store must refuse work")
        } catch let error as StoreError {
            #expect(error.code == .closed)
        }
    }

    @Test func libpqKeywordStringsAndItsEnvironmentWork() async throws {
        // The test URL is postgresql://user@/db?host=DIR&port=N; the same target as keywords.
        let admin = try TestDatabase.adminURL()
        let components = URLComponents(string: admin.replacingOccurrences(of: "postgresql://postgres@/", with: "postgresql://postgres@localhost/"))
        let items = Dictionary(uniqueKeysWithValues: (components?.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        let host = try #require(items["host"])
        let port = try #require(items["port"])
        let db = try await TestDatabase.make(.postgres)
        let name = try #require(db.databaseName)
        do {
            let store = try await openStore(url: "host=\(host) port=\(port) user=postgres dbname=\(name)", logger: quietLogger)
            #expect(store.backend == .postgres)
            #expect(try await store.schemaVersion() == Migrations.latestVersion)
            await store.close()
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}
