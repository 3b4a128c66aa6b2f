import CSQLite
import Foundation

/// One SQLite connection (WAL, busy timeout, foreign keys) with a prepared-statement cache.
/// Not thread-safe: owned by one `ConnectionHandle` and used only on its serial queue.
final class SQLiteConnection: SQLConnection {
    let dialect = SQLDialect.sqlite
    private var db: OpaquePointer?
    private var statements: [StatementKey: OpaquePointer] = [:]
    private let path: String
    /// The page size of a database this connection creates (SQLite's default is 4 KB).
    static let newDatabasePageSize = 8192

    /// Process-wide settings, applied once before the first connection opens (SQLite refuses them
    /// later, harmlessly): no allocation statistics, so no global mutex on every malloc and free.
    private static let configured: Bool = {
        signoff_sqlite_config_memstatus(0) == SQLITE_OK
    }()

    /// - walAutocheckpointPages: the WAL size (pages) at which a commit copies it back into the
    ///   database itself; the store's writer sets it high and leaves that to `SQLiteCheckpointer`.
    init(path: String, busyTimeoutMilliseconds: Int32 = 30_000, walAutocheckpointPages: Int = 4000) throws {
        _ = Self.configured
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        if rc != SQLITE_OK {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw StoreError(.connectionFailed, "could not open the SQLite database \(path): \(message); check that the folder exists and is writable (`database:` in signoff.yaml or $SIGNOFF_DATABASE)")
        }
        db = handle
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        do {
            // A new database gets 8 KB pages (an existing one keeps the size it was created with;
            // the pragma must come before WAL mode, which writes the first page). A request row
            // carries its flow state, often 2 KB or more: at 4 KB a page holds one or two, and a
            // batch of decisions rewrites a page per request. 8 KB pages measured 9% faster on the
            // import (ImportBenchmark, six alternating rounds) and no slower on the runner's
            // small transactions; 16 KB gained nothing more.
            try exec("PRAGMA page_size=\(Self.newDatabasePageSize)")
            try exec("PRAGMA journal_mode=WAL")
            try exec("PRAGMA synchronous=NORMAL")
            try exec("PRAGMA foreign_keys=ON")
            // A bigger page cache and fewer, larger WAL checkpoints: pages a busy queue rewrites
            // constantly (run rows, indexes) are then copied back to the database file once.
            try exec("PRAGMA cache_size=-32000")
            try exec("PRAGMA wal_autocheckpoint=\(walAutocheckpointPages)")
            try exec("PRAGMA temp_store=MEMORY")
            // Reads straight from the page cache of the OS instead of a copy per page read.
            try exec("PRAGMA mmap_size=268435456")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        statements.removeAll()
        if let db {
            sqlite3_close_v2(db)
            self.db = nil
        }
    }

    private func handle() throws -> OpaquePointer {
        guard let db else { throw StoreError(.closed, "the SQLite database \(path) is closed") }
        return db
    }

    private func error(_ rc: Int32, _ sql: String) -> StoreError {
        error(rc, db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed", sql)
    }

    /// The store's error for SQLite's result `rc` with its `message`, from running `sql`.
    private func error(_ rc: Int32, _ message: String, _ sql: String) -> StoreError {
        let primary = rc & 0xff
        if primary == SQLITE_BUSY || primary == SQLITE_LOCKED {
            return StoreError(.busy, "the SQLite database \(path) stayed locked by another process: \(message)")
        }
        if primary == SQLITE_CONSTRAINT {
            return StoreError(.queryFailed, "constraint failed: \(message)")
        }
        // A full disk shows as SQLITE_FULL, or as an I/O error when SQLite cannot create or grow
        // its -wal and -shm files: say which it is when the file system is indeed (almost) full.
        if primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN,
           let free = Self.freeBytes(near: path), free < Self.nearlyFull {
            let folder = (path as NSString).deletingLastPathComponent
            return StoreError(.diskFull, "the file system holding \(folder) is full (\(free / 1024) KB free; SQLite: \(message)); nothing was written: free some space there, then run the command again")
        }
        return StoreError(.queryFailed, "SQLite: \(message) (in `\(sql.prefix(120))`)")
    }

    /// Below this much free space a failed write is put down to a full disk.
    static let nearlyFull: UInt64 = 4 << 20

    /// Free bytes (for unprivileged users) on the file system holding `path`'s folder.
    static func freeBytes(near path: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs((path as NSString).deletingLastPathComponent, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// Transaction control run for every write (and every group-commit savepoint): compiled once.
    private static let cachedControl: Set<String> = [
        "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "SAVEPOINT signoff_op", "RELEASE signoff_op", "ROLLBACK TO signoff_op",
    ]

    func exec(_ sql: String) throws {
        if Self.cachedControl.contains(sql) {
            let stmt = try prepare(sql)
            let rc = sqlite3_step(stmt)
            sqlite3_reset(stmt)
            if rc != SQLITE_DONE && rc != SQLITE_ROW { throw error(rc, sql) }
            return
        }
        let db = try handle()
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let text = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errmsg)
            throw error(rc, text, sql)
        }
    }

    /// Converts `$n` placeholders to SQLite's `?n`, or to plain `?` when they appear exactly in
    /// the order 1, 2, 3 … (as in every generated multi-row statement): SQLite then numbers them
    /// itself, instead of looking each `?n` up in a list, which makes preparing a statement with
    /// hundreds of parameters quadratic.
    static func translate(_ sql: String) -> String {
        guard sql.contains("$") else { return sql }
        let bytes = Array(sql.utf8)
        let dollar = UInt8(ascii: "$"), quote = UInt8(ascii: "'"), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var sequential = true
        var expected = 1
        var i = 0
        while i < bytes.count {
            if bytes[i] == dollar && (i == 0 || bytes[i - 1] != quote) {
                var j = i + 1
                var n = 0
                while j < bytes.count && bytes[j] >= zero && bytes[j] <= nine { n = n * 10 + Int(bytes[j] - zero); j += 1 }
                if n != expected { sequential = false; break }
                expected += 1
                i = j
            } else {
                i += 1
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == dollar && (i == 0 || bytes[i - 1] != quote) {
                out.append(UInt8(ascii: "?"))
                i += 1
                if sequential { while i < bytes.count && bytes[i] >= zero && bytes[i] <= nine { i += 1 } }
            } else {
                out.append(b)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        let key = StatementKey(sql)
        if let stmt = statements[key] { return stmt }
        let db = try handle()
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, Self.translate(sql), -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        statements[key] = stmt
        return stmt
    }

    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow] {
        try run(sql, params, [])
    }

    func query(_ statement: SQLStatement) throws -> [SQLRow] {
        try run(statement.sql, statement.params, statement.rows)
    }

    /// Runs `sql` with `params` and then the values of `rows` bound in order.
    private func run(_ sql: String, _ params: [SQLValue], _ valueRows: ArraySlice<[SQLValue]>) throws -> [SQLRow] {
        let stmt = try prepare(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        var bytes = 0
        for value in params { bytes += Self.boundBytes(value) }
        for row in valueRows { for value in row { bytes += Self.boundBytes(value) } }
        let base = arena.reserve(bytes)
        var binder = Binder(stmt: stmt, base: base)
        for value in params { try binder.bind(value, or: { error($0, sql) }) }
        for row in valueRows { for value in row { try binder.bind(value, or: { error($0, sql) }) } }
        var rows: [SQLRow] = []
        let columns = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columns))
            for c in 0..<columns {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_TEXT:
                    // Read with its length (no strlen); bound text never holds a NUL (`bindText`).
                    let count = Int(sqlite3_column_bytes(stmt, c))
                    let text = sqlite3_column_text(stmt, c)
                    values.append(.text(count == 0 || text == nil ? "" : String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(stmt, c))
                    if count == 0 { values.append(.blob(Data())) }
                    else { values.append(.blob(Data(bytes: sqlite3_column_blob(stmt, c), count: count))) }
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(values: values))
        }
        return rows
    }

    /// The bytes `value` copies into the arena.
    private static func boundBytes(_ value: SQLValue) -> Int {
        switch value {
        case .text(let s): s.utf8.count
        case .blob(let d): d.count
        case .null, .int, .double: 0
        }
    }

    /// Binds a statement's values in order. Text and blobs are copied into the connection's arena
    /// and bound where they are (`SQLITE_STATIC`): one buffer reused by every statement, instead
    /// of SQLite allocating and copying each value. The bindings are cleared before the arena is
    /// used again.
    private struct Binder {
        let stmt: OpaquePointer
        let base: UnsafeMutableRawPointer
        var offset = 0
        var index: Int32 = 1

        init(stmt: OpaquePointer, base: UnsafeMutableRawPointer) {
            self.stmt = stmt
            self.base = base
        }

        mutating func bind(_ value: SQLValue, or failure: (Int32) -> StoreError) throws {
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let s): rc = bindText(s)
            case .blob(let d):
                let target = base + offset
                let count = d.count
                d.withUnsafeBytes { buf in
                    if let source = buf.baseAddress, count > 0 { target.copyMemory(from: source, byteCount: count) }
                }
                offset += count
                rc = sqlite3_bind_blob(stmt, index, target, Int32(count), signoff_sqlite_static())
            }
            if rc != SQLITE_OK { throw failure(rc) }
            index += 1
        }

        /// Binds `s` up to its first NUL character, as a C string would end (PostgreSQL text
        /// cannot hold one either), from the string's UTF-8 with its length: no `strlen`.
        private mutating func bindText(_ s: String) -> Int32 {
            var s = s
            let target = base + offset
            let length: Int = s.withUTF8 { utf8 in
                guard let source = utf8.baseAddress, !utf8.isEmpty else { return 0 }
                target.copyMemory(from: source, byteCount: utf8.count)
                return memchr(source, 0, utf8.count).map { UnsafeRawPointer($0) - UnsafeRawPointer(source) } ?? utf8.count
            }
            offset += s.utf8.count
            return sqlite3_bind_text(stmt, index, target.assumingMemoryBound(to: CChar.self), Int32(length), signoff_sqlite_static())
        }
    }

    /// The buffer bound values are copied into (see `Binder`): grown as needed, shrunk back to
    /// `BindArena.kept` after a larger statement, freed with the connection.
    private let arena = BindArena()

    func begin(write: Bool) throws { try exec(write ? "BEGIN IMMEDIATE" : "BEGIN") }
    func commit() throws { try exec("COMMIT") }
    func rollback() {
        if let db, sqlite3_get_autocommit(db) == 0 { _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
    }
    func isBroken() -> Bool { false }
    func reset() throws {}
}

/// A prepared statement's cache key: its SQL text, hashed by its length and its first and last
/// bytes, compared by length before text. The import's texts are long (a 256-row INSERT is tens
/// of KB) and share long prefixes (the same INSERT for 256, 64, 16 … rows): hashing each whole
/// and comparing it byte by byte with its neighbours in the table, on every execution, was about
/// 1% of the import's CPU samples (below what its throughput can show). Keys with the same length
/// and ends are still told apart by their text.
struct StatementKey: Hashable {
    let sql: String
    let length: Int

    init(_ sql: String) {
        self.sql = sql
        length = sql.utf8.count
    }

    static func == (a: StatementKey, b: StatementKey) -> Bool { a.length == b.length && a.sql == b.sql }

    func hash(into hasher: inout Hasher) {
        hasher.combine(length)
        var text = sql
        text.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            let ends = min(32, bytes.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<ends]))
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - ends)...]))
        }
    }
}

/// A growable byte buffer owned by one connection (used only on its queue). It grows to the
/// largest statement's values; once a statement needs no more than `kept` bytes again, a buffer
/// grown past `kept` goes back to `kept`, so one large write (a big checkpoint) does not hold its
/// size for the connection's life.
final class BindArena {
    /// The most a buffer keeps between statements: more than a 1,024-message import batch binds.
    static let kept = 4 << 20
    private var storage: UnsafeMutableRawPointer
    private(set) var capacity: Int

    init() {
        capacity = 4096
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    /// At least `bytes` bytes (at least one, so an empty value still has an address). Invalidates
    /// what an earlier call returned.
    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity {
            reallocate(max(bytes, capacity * 2))
        } else if capacity > Self.kept && bytes <= Self.kept {
            reallocate(Self.kept)
        }
        return storage
    }

    private func reallocate(_ size: Int) {
        storage.deallocate()
        capacity = size
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }
}
