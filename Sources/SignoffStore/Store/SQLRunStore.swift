import Crypto
import Foundation
import Logging
import Synchronization

/// The run store over SQLite or PostgreSQL: one SQL implementation, two dialects.
///
/// SQLite: one connection (one writer; WAL lets other processes read), write transactions are
/// `BEGIN IMMEDIATE`. PostgreSQL: a small pool of libpq connections, each on its own serial queue.
final class SQLRunStore: RunStore {
    let backend: StoreBackend
    let redactedTarget: String
    let dialect: SQLDialect
    let pool: ConnectionPool
    let logger: Logger
    let target: DatabaseTarget
    /// Opened by the first `waitForWork`.
    private let waiter = Mutex<(any WorkWaiter)?>(nil)
    /// Concurrent `pause` calls, run as set-based batches.
    let pauseBatcher: Coalescer<PauseOperation, PauseResult>
    /// Concurrent `saveCheckpoint` calls, run as set-based batches.
    let checkpointBatcher: Coalescer<CheckpointOperation, CheckpointRecord>
    /// Concurrent `claimRuns` calls (of one process's runners), run as one claim for all.
    let claimBatcher: Coalescer<ClaimOperation, [ClaimedRun]>
    /// Concurrent `finish` calls (a runner ends each of its runs on its own), run as `finishMany` batches.
    let finishBatcher: Coalescer<FinishOperation, Void>
    /// Concurrent `answer` calls, run as `answerMany` batches. PostgreSQL: one lane per two
    /// connections, so answers leave room for the other writes and batches grow under load
    /// (measured on 8 connections: 4 lanes gave about 1.5 times the answers/s of 8).
    let answerBatcher: Coalescer<Answer, AnswerResult>

    /// The most operations one coalesced batch takes: bounds statement size and commit latency.
    static let maxBatch = 64

    /// SQLite: copies the WAL into the database off the writer's thread.
    private let checkpointer: SQLiteCheckpointer?

    /// SQLite (a file): a second connection for the import's token lookups, which then read the
    /// last commit beside the writer (WAL) instead of queueing behind the batches it is committing.
    let lookupReader: ConnectionHandle?

    private init(target: DatabaseTarget, pool: ConnectionPool, logger: Logger, checkpointer: SQLiteCheckpointer?,
                 lookupReader: ConnectionHandle? = nil) {
        self.checkpointer = checkpointer
        self.lookupReader = lookupReader
        self.target = target
        self.backend = target.backend
        self.redactedTarget = target.redacted
        self.dialect = target.backend == .postgres ? .postgres : .sqlite
        self.pool = pool
        self.logger = logger
        let lanes = Self.batchLanes(connections: pool.handles.count)
        let store = StoreReference()
        pauseBatcher = Coalescer(lanes: lanes, maxBatch: Self.maxBatch) { ops in
            try await store.get().executeBatches(ops, runID: { $0.lease.runID }) { store, conn, batch in
                try store.pauseRows(conn, batch)
            }
        }
        checkpointBatcher = Coalescer(lanes: lanes, maxBatch: Self.maxBatch) { ops in
            try await store.get().executeBatches(ops, runID: { $0.lease.runID }) { store, conn, batch in
                try store.checkpointRows(conn, batch)
            }
        }
        claimBatcher = Coalescer(lanes: lanes, maxBatch: 16) { ops in
            let store = try store.get()
            return try await store.pool.write { conn in try store.claimRows(conn, ops) }.map { .success($0) }
        }
        finishBatcher = Coalescer(lanes: lanes, maxBatch: Self.maxBatch) { ops in
            try await store.get().executeBatches(ops, runID: { $0.completion.lease.runID }) { store, conn, batch in
                let lost = Set(try store.finishRows(conn, batch))
                return batch.map { op in
                    lost.contains(op.completion.lease.runID) ? .failure(Self.leaseLost(op.completion.lease)) : .success(())
                }
            }
        }
        let answerLanes = target.backend == .postgres ? max(1, (pool.handles.count + 1) / 2) : 1
        answerBatcher = Coalescer(lanes: answerLanes, maxBatch: Self.answerBatchLimit) { answers in
            try await store.get().answerMany(answers).map { $0.mapError { $0 as any Error } }
        }
        store.set(self)
    }

    static func open(target: DatabaseTarget, logger: Logger, connections: Int) async throws -> any RunStore {
        let handles: [ConnectionHandle]
        switch target.backend {
        case .sqlite:
            let path = target.location
            // With the background checkpointer, the writer checkpoints itself only as a safety net
            // (256 MiB of log); an in-memory database has no log.
            let background = path != ":memory:"
            handles = [ConnectionHandle(label: "signoff.store.sqlite") {
                try SQLiteConnection(path: path, walAutocheckpointPages: background ? 65_536 : 4000)
            }]
        case .postgres:
            let conninfo = target.location
            let redacted = target.redacted
            handles = (0..<max(1, connections)).map { i in
                ConnectionHandle(label: "signoff.store.pg.\(i)") {
                    try PostgresConnection(conninfo: conninfo, redactedTarget: redacted)
                }
            }
        }
        // SIGNOFF_STORE_GROUP_COMMIT=off turns SQLite group commit off (for measurements).
        let groupCommit = target.backend == .sqlite && ProcessInfo.processInfo.environment["SIGNOFF_STORE_GROUP_COMMIT"] != "off"
        let pool = ConnectionPool(handles: handles, groupCommit: groupCommit)
        let sqliteFile = target.backend == .sqlite && target.location != ":memory:"
        let path = target.location
        let store = SQLRunStore(target: target, pool: pool, logger: logger,
                                checkpointer: sqliteFile ? SQLiteCheckpointer(path: path) : nil,
                                lookupReader: sqliteFile ? ConnectionHandle(label: "signoff.store.sqlite.lookups") {
                                    try SQLiteConnection(path: path)
                                } : nil)
        do {
            try await handles[0].connect()
            try await store.migrate()
            for h in handles.dropFirst() { try await h.connect() }
        } catch {
            await pool.close()
            await store.checkpointer?.close()
            throw error
        }
        logger.debug("store opened", metadata: ["store.target": "\(target.redacted)"])
        return store
    }

    func close() async {
        await pool.close()
        await lookupReader?.close()
        await checkpointer?.close()
        if let waiter = waiter.withLock({ w -> (any WorkWaiter)? in defer { w = nil }; return w }) { await waiter.close() }
    }

    func waitForWork(timeout: Double) async throws -> Bool {
        if pool.isClosed { throw StoreError(.closed, "the store is closed") }
        let target = self.target
        let waiter: (any WorkWaiter)? = try self.waiter.withLock { w in
            if w == nil {
                switch target.backend {
                case .postgres: w = try PostgresWorkListener(conninfo: target.location)
                case .sqlite: w = target.location == ":memory:" ? nil : SQLiteChangeWatcher(path: target.location)
                }
            }
            return w
        }
        guard let waiter else {
            try? await Task.sleep(for: .milliseconds(Int64(max(0, timeout) * 1000)))
            return false
        }
        return try await waiter.wait(timeout: timeout)
    }

    /// How many coalesced batches of one kind may run at once. SQLite: 1 (its single writer, where
    /// batches also share group commits). PostgreSQL: a quarter of the pool, at least 1: fewer
    /// lanes than busy callers is what makes calls wait a moment and share a batch, and a batch of
    /// N costs the server about what one call costs (statements, commit), so throughput grows with
    /// the batch; the rest of the pool serves claims, answers and reads meanwhile.
    /// `SIGNOFF_STORE_BATCH_LANES` overrides it (for measurements).
    static func batchLanes(connections: Int) -> Int {
        if let text = ProcessInfo.processInfo.environment["SIGNOFF_STORE_BATCH_LANES"], let n = Int(text), n > 0 { return n }
        return max(1, connections / 4)
    }

    /// The store, for the coalescers it owns (a weak reference: no cycle).
    final class StoreReference: Sendable {
        private let reference = Mutex<Weak?>(nil)
        struct Weak: @unchecked Sendable {
            // @unchecked Sendable: holds a Sendable store; the wrapper only exists to make the reference weak.
            weak var store: SQLRunStore?
        }
        func set(_ store: SQLRunStore) { reference.withLock { $0 = Weak(store: store) } }
        func get() throws -> SQLRunStore {
            guard let store = reference.withLock({ $0?.store }) else { throw StoreError(.closed, "the store is closed") }
            return store
        }
    }

    // MARK: Migrations

    func migrate() async throws {
        let dialect = self.dialect
        let target = redactedTarget
        let applied: [Int] = try await pool.raw { conn in
            try Self.migrate(conn, dialect: dialect, target: target)
        }
        if !applied.isEmpty {
            logger.info("database schema migrated", metadata: ["store.versions": "\(applied)", "store.target": "\(target)"])
        }
    }

    /// Applies pending migrations under a lock that serialises concurrent starters.
    static func migrate(_ conn: any SQLConnection, dialect: SQLDialect, target: String,
                        upTo last: Int = Migrations.latestVersion) throws -> [Int] {
        let lockKey: Int64 = 0x5349_474E_4F46 // "SIGNOF"
        switch dialect {
        case .postgres:
            try conn.query("SELECT pg_advisory_lock($1)", .int(lockKey))
        case .sqlite:
            try conn.exec("BEGIN EXCLUSIVE")
        }
        var applied: [Int] = []
        do {
            try conn.exec("CREATE TABLE IF NOT EXISTS signoff_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)")
            let current = try conn.query("SELECT max(version) FROM signoff_schema_migrations").first?.int(0) ?? 0
            if current > Migrations.latestVersion {
                throw StoreError(.schemaTooNew, "the database at \(target) has schema version \(current), but this signoff only knows versions up to \(Migrations.latestVersion); upgrade signoff, or point `database:` at another database")
            }
            for migration in Migrations.all where migration.version > current && migration.version <= last {
                if dialect == .postgres { try conn.exec("BEGIN") }
                do {
                    for statement in migration.sql(dialect) { try conn.exec(statement) }
                    try conn.query("INSERT INTO signoff_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                   .int(migration.version), .text(migration.name), .time(Date()))
                    if dialect == .postgres { try conn.exec("COMMIT") }
                } catch let error as StoreError {
                    if dialect == .postgres { conn.rollback() }
                    throw StoreError(.migrationFailed, "migration \(migration.version) (\(migration.name)) failed: \(error.message)")
                }
                applied.append(migration.version)
            }
            switch dialect {
            case .postgres: try conn.query("SELECT pg_advisory_unlock($1)", .int(lockKey))
            case .sqlite: try conn.exec("COMMIT")
            }
        } catch {
            switch dialect {
            case .postgres: _ = try? conn.query("SELECT pg_advisory_unlock($1)", .int(lockKey))
            case .sqlite: conn.rollback()
            }
            throw error
        }
        return applied
    }

    func schemaVersion() async throws -> Int {
        try await pool.read { conn in
            try conn.query("SELECT max(version) FROM signoff_schema_migrations").first?.int(0) ?? 0
        }
    }

    // MARK: Helpers

    /// `FOR UPDATE` on PostgreSQL (row lock), nothing on SQLite (the write transaction locks the database).
    var forUpdate: String { dialect == .postgres ? " FOR UPDATE" : "" }

    /// `$first, $first+1, …` for an IN list of `count` values.
    static func placeholders(_ count: Int, from first: Int) -> String {
        (0..<count).map { "$\(first + $0)" }.joined(separator: ",")
    }

    /// A sortable id: 12 hex digits of milliseconds, then 12 random hex digits.
    static func makeID(_ now: Date = Date()) -> String {
        let ms = UInt64(max(0, millis(now)))
        var rng = SystemRandomNumberGenerator()
        let random = rng.next() & 0xFFFF_FFFF_FFFF
        let a = String(ms, radix: 16)
        let b = String(random, radix: 16)
        return String(repeating: "0", count: max(0, 12 - a.count)) + a
            + String(repeating: "0", count: max(0, 12 - b.count)) + b
    }

    static func json(_ data: Data) -> SQLValue { .text(String(decoding: data, as: UTF8.self)) }
    static func json(_ data: Data?) -> SQLValue { data.map { json($0) } ?? .null }

    static func jsonArray(_ strings: [String]) -> String {
        "[" + strings.map(jsonString).joined(separator: ",") + "]"
    }

    static func parseJSONArray(_ text: String?) -> [String] {
        guard let text else { return [] }
        if let simple = parseSimpleJSONArray(text) { return simple }
        guard let data = text.data(using: .utf8),
              let array = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return array
    }

    /// The strings of a JSON array written by `jsonArray` whose strings need no unescaping (the
    /// usual list of reviewer addresses), without Foundation's JSON parser; nil for anything else.
    static func parseSimpleJSONArray(_ text: String) -> [String]? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]"),
              !bytes.contains(UInt8(ascii: "\\")) else { return nil }
        var out: [String] = []
        var i = 1
        let end = bytes.count - 1
        if i == end { return [] }
        while i < end {
            guard bytes[i] == UInt8(ascii: "\"") else { return nil }
            guard let close = bytes[(i + 1)..<end].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            out.append(String(decoding: bytes[(i + 1)..<close], as: UTF8.self))
            i = close + 1
            if i == end { break }
            guard bytes[i] == UInt8(ascii: ",") else { return nil }
            i += 1
            guard i < end else { return nil }
        }
        return out
    }

    static func jsonString(_ s: String) -> String {
        // Fast path: nothing to escape.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + s + "\""
        }
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Event details as canonical JSON text: keys sorted, no whitespace.
    static func canonicalJSON(_ data: [String: String]) -> String {
        "{" + data.keys.sorted().map { jsonString($0) + ":" + jsonString(data[$0]!) }.joined(separator: ",") + "}"
    }

    static func sha256Hex(_ text: String) -> String {
        var text = text
        return hex(text.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) })
    }

    /// Lower-case hex of a digest.
    static func hex(_ digest: SHA256.Digest) -> String {
        // Written straight into the string's storage: one allocation.
        String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { out in
            var i = 0
            for byte in digest {
                out[i] = hexDigit(byte >> 4)
                out[i + 1] = hexDigit(byte & 0x0f)
                i += 2
            }
            return i
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
