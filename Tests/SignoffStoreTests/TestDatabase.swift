import Foundation
import Logging
@testable import SignoffStore
import Testing

/// The backends every shared test runs against.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres
    var testDescription: String { rawValue }
}

/// A fresh, empty database for one test: a temporary SQLite file, or a new PostgreSQL database
/// created on the cluster `scripts/test` started (so PostgreSQL tests can run in parallel).
struct TestDatabase: Sendable {
    let backend: Backend
    /// The setting a user would write (`sqlite:PATH` or a postgres URL).
    let url: String
    private let cleanupPath: String?
    let databaseName: String?

    /// A connection of the test's own to this database, outside any store (its queue as the
    /// store's connections have one); SQLite waits `busyMilliseconds` for a lock.
    func rawConnection(_ label: String, busyMilliseconds: Int32 = 30_000) throws -> ConnectionHandle {
        let target = try DatabaseTarget.parse(url)
        let backend = self.backend
        return ConnectionHandle(label: label) {
            backend == .sqlite ? try SQLiteConnection(path: target.location, busyTimeoutMilliseconds: busyMilliseconds) as any SQLConnection
                : try PostgresConnection(conninfo: target.location, redactedTarget: "test")
        }
    }

    static func adminURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SIGNOFF_TEST_POSTGRES"], !url.isEmpty else {
            throw TestSetupError("SIGNOFF_TEST_POSTGRES is not set: PostgreSQL tests need a real server; run scripts/test")
        }
        return url
    }

    /// The same URL with another database name.
    static func url(_ admin: String, database: String) -> String {
        let parts = admin.split(separator: "?", maxSplits: 1).map(String.init)
        let head = parts[0]
        let query = parts.count > 1 ? parts[1] : nil
        let schemeEnd = head.range(of: "://")!.upperBound
        let base: String
        if let slash = head[schemeEnd...].firstIndex(of: "/") { base = String(head[..<slash]) } else { base = head }
        return base + "/" + database + (query.map { "?" + $0 } ?? "")
    }

    static func make(_ backend: Backend) async throws -> TestDatabase {
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            return TestDatabase(backend: .sqlite, url: "sqlite:" + dir.appendingPathComponent("signoff.db").path,
                                cleanupPath: dir.path, databaseName: nil)
        case .postgres:
            let admin = try adminURL()
            let name = "signoff_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            try await adminExec(admin, "CREATE DATABASE \(name)")
            return TestDatabase(backend: .postgres, url: url(admin, database: String(name)), cleanupPath: nil,
                                databaseName: String(name))
        }
    }

    static func adminExec(_ admin: String, _ sql: String) async throws {
        let handle = ConnectionHandle(label: "test.admin") {
            try PostgresConnection(conninfo: admin, redactedTarget: "test cluster")
        }
        try await handle.perform { conn in try conn.exec(sql) }
        await handle.close()
    }

    func open(connections: Int = 4) async throws -> any RunStore {
        try await openStore(url: url, logger: quietLogger, connections: connections)
    }

    func drop() async {
        if let cleanupPath { try? FileManager.default.removeItem(atPath: cleanupPath) }
        if let databaseName, let admin = try? Self.adminURL() {
            try? await Self.adminExec(admin, "DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)")
        }
    }

    /// Runs SQL directly against the test database (to tamper with rows, inspect views …).
    static func sql(_ store: any RunStore, _ text: String) async throws -> [[String?]] {
        let sqlStore = try #require(store as? SQLRunStore)
        return try await sqlStore.pool.write { conn in
            try conn.query(text, []).map { row in row.values.indices.map { row.string($0) } }
        }
    }
}

/// Opens a fresh store for `backend`, runs `body`, then closes and drops it. PostgreSQL tests
/// take a slot of `TestSlots.postgres` first (see there).
func withStore<T>(_ backend: Backend, _ body: (any RunStore, TestDatabase) async throws -> T) async throws -> T {
    let slots = backend == .postgres ? TestSlots.postgres : nil
    await slots?.acquire()
    let db: TestDatabase
    do { db = try await TestDatabase.make(backend) } catch { await slots?.release(); throw error }
    let store: any RunStore
    do { store = try await db.open() } catch { await db.drop(); await slots?.release(); throw error }
    do {
        let value = try await body(store, db)
        await store.close()
        await db.drop()
        await slots?.release()
        return value
    } catch {
        await store.close()
        await db.drop()
        await slots?.release()
        throw error
    }
}

/// Swift Testing starts every test at once, and each PostgreSQL store test holds 5 connections
/// (a pool of 4 and the admin one that creates its database): with the other targets' tests
/// (runner processes, CLI runs) the shared test cluster's `max_connections` (200) ran out. At most
/// `count` store tests hold a PostgreSQL database at a time; the others wait their turn.
actor TestSlots {
    static let postgres = TestSlots(count: 12)
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = count }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Tests only want warnings and errors from the store.
let quietLogger: Logger = {
    var logger = Logger(label: "test.store")
    logger.logLevel = .warning
    return logger
}()

/// A fixed clock origin so tests never sleep: times are offsets from it.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

func json(_ text: String) -> Data { Data(text.utf8) }

/// A request with one token per reviewer (token hash = "hash-<reviewer>-<request>").
func makeRequest(_ id: String, reviewers: [String] = ["ann@example.org"], quorum: Quorum = .any,
                 rejectOn: RejectPolicy = .any, dueAt: Date? = nil, remindAt: Date? = nil) -> NewRequest {
    NewRequest(id: id, executorID: "review", stepID: "review", requestType: "Approval",
               requestData: json(#"{"title":"Q3 report"}"#), responseType: "Decision", reviewers: reviewers,
               tokens: reviewers.map { NewToken(tokenHash: tokenHash($0, id), reviewer: $0, expiresAt: t0.addingTimeInterval(86_400),
                                                messageID: "<\(id).\($0)@signoff>") },
               quorum: quorum, rejectOn: rejectOn, dueAt: dueAt, remindAt: remindAt)
}

func tokenHash(_ reviewer: String, _ request: String) -> String { "hash-\(reviewer)-\(request)" }

func requestMail(_ request: String, to reviewer: String, run: String) -> NewMail {
    NewMail(messageID: "<\(request).\(reviewer)@signoff>", kind: .request, recipient: reviewer,
            raw: Data("Subject: please review\r\n\r\nAPPROVE or REJECT\r\n".utf8), requestID: request, runID: run)
}

/// Enqueues one run, claims it as `owner` and pauses it on `requests` (mail to every reviewer).
func pausedRun(_ store: any RunStore, requests: [NewRequest], owner: String = "runner-a",
               checkpoint: String = #"{"step":1}"#) async throws -> (RunRecord, Lease) {
    let (run, _) = try await store.enqueue(NewRun(job: "report", input: json(#"{"week":"last"}"#), requestedBy: "ops@example.org"), now: t0)
    let claimed = try await store.claimRuns(owner: owner, limit: 1, leaseSeconds: 60, now: t0)
    let lease = try #require(claimed.first?.lease)
    let mail = requests.flatMap { r in r.reviewers.map { requestMail(r.id, to: $0, run: run.id) } }
    _ = try await store.pause(lease, checkpoint: NewCheckpoint(superstep: 1, data: json(checkpoint)), requests: requests,
                              mail: mail, delivered: [], now: t0.addingTimeInterval(1))
    return (run, lease)
}
