import Foundation

/// A value bound to or read from a SQL statement (both backends).
enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob(Data)

    static func optional(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    static func optional(_ d: Data?) -> SQLValue { d.map { .blob($0) } ?? .null }
    static func optional(_ i: Int?) -> SQLValue { i.map { .int(Int64($0)) } ?? .null }
    static func int(_ i: Int) -> SQLValue { .int(Int64(i)) }
    /// Times are stored as integer milliseconds since 1970 (UTC) on both backends.
    static func time(_ d: Date) -> SQLValue { .int(millis(d)) }
    static func time(_ d: Date?) -> SQLValue { d.map { .int(millis($0)) } ?? .null }
}

/// `value` in decimal ASCII, as `String(value)` writes it, appended to `out` (no string made).
func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
    if value == 0 { out.append(UInt8(ascii: "0")); return }
    var magnitude = value.magnitude
    if value < 0 { out.append(UInt8(ascii: "-")) }
    let start = out.count
    while magnitude > 0 {
        out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
        magnitude /= 10
    }
    out[start...].reverse()
}

/// Milliseconds since 1970 for a date (what the store writes).
func millis(_ d: Date) -> Int64 { Int64((d.timeIntervalSince1970 * 1000).rounded()) }
/// The date for stored milliseconds.
func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

/// One result row.
struct SQLRow: Sendable {
    var values: [SQLValue]

    subscript(_ i: Int) -> SQLValue { values[i] }

    func isNull(_ i: Int) -> Bool { if case .null = values[i] { return true } else { return false } }

    func int64(_ i: Int) -> Int64? {
        switch values[i] {
        case .int(let v): v
        case .double(let v): Int64(v)
        case .text(let s): Int64(s)
        case .null, .blob: nil
        }
    }
    func int(_ i: Int) -> Int? { int64(i).map { Int($0) } }
    func string(_ i: Int) -> String? {
        switch values[i] {
        case .text(let s): s
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .blob(let d): String(decoding: d, as: UTF8.self)
        case .null: nil
        }
    }
    func data(_ i: Int) -> Data? {
        switch values[i] {
        case .blob(let d): d
        case .text(let s): Data(s.utf8)
        case .null, .int, .double: nil
        }
    }
    func date(_ i: Int) -> Date? { int64(i).map { SignoffStore.date(millis: $0) } }
    func bool(_ i: Int) -> Bool? {
        switch values[i] {
        case .int(let v): v != 0
        case .text(let s): s == "t" || s == "true" || s == "1"
        default: nil
        }
    }

    // Non-optional accessors for NOT NULL columns.
    func requiredString(_ i: Int) throws -> String {
        guard let s = string(i) else { throw StoreError(.corrupt, "a required text column (#\(i)) is NULL") }
        return s
    }
    func requiredInt(_ i: Int) throws -> Int {
        guard let v = int(i) else { throw StoreError(.corrupt, "a required integer column (#\(i)) is NULL") }
        return v
    }
    func requiredDate(_ i: Int) throws -> Date {
        guard let v = date(i) else { throw StoreError(.corrupt, "a required time column (#\(i)) is NULL") }
        return v
    }
    func requiredData(_ i: Int) throws -> Data {
        guard let v = data(i) else { throw StoreError(.corrupt, "a required bytes column (#\(i)) is NULL") }
        return v
    }
}

/// The few places where SQLite and PostgreSQL SQL differ.
enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// A synchronous database connection, used only on its own serial queue.
protocol SQLConnection: AnyObject {
    var dialect: SQLDialect { get }
    /// Runs one statement with `$1…$n` parameters and returns its rows.
    @discardableResult
    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow]
    /// Runs one statement (with its rows, if it has any).
    @discardableResult
    func query(_ statement: SQLStatement) throws -> [SQLRow]
    /// Runs statements without parameters (DDL, BEGIN/COMMIT).
    func exec(_ sql: String) throws
    /// Starts a transaction: `write` takes the write lock up front on SQLite (BEGIN IMMEDIATE).
    func begin(write: Bool) throws
    func commit() throws
    func rollback()
    /// True when the last failure means the connection is gone (PostgreSQL); a retry on a reset connection may help.
    func isBroken() -> Bool
    /// Re-establishes a broken connection; throws when it cannot.
    func reset() throws
    /// Closes the handle; idempotent.
    func close()
    /// See the extension: PostgreSQL notifies waiting workers when this transaction commits.
    func notifyWork()
    /// Runs statements in order and returns each one's rows. PostgreSQL sends them all at once (one
    /// round trip); with `commit`, the open transaction's COMMIT goes in the same round trip and the
    /// transaction wrapper's `commit()` then has nothing left to do. SQLite runs them one by one and
    /// leaves the commit to the wrapper (or the group commit).
    func pipeline(_ statements: [SQLStatement], commit: Bool) throws -> [[SQLRow]]
}

/// One statement and its parameters, for `SQLConnection.pipeline`.
struct SQLStatement: Sendable {
    var sql: String
    var params: [SQLValue]
    /// A multi-row write's rows, bound in order after `params`: SQLite binds them where they are,
    /// instead of from a flat copy of every value (which retains each one again).
    var rows: ArraySlice<[SQLValue]>

    init(_ sql: String, _ params: [SQLValue]) {
        self.sql = sql
        self.params = params
        self.rows = []
    }

    init(_ sql: String, rows: ArraySlice<[SQLValue]>) {
        self.sql = sql
        self.params = []
        self.rows = rows
    }

    /// Every parameter in order: `params`, then the rows' values.
    var allParams: [SQLValue] {
        if rows.isEmpty { return params }
        var out = params
        out.reserveCapacity(params.count + rows.count * (rows.first?.count ?? 0))
        for row in rows { out += row }
        return out
    }
}

extension SQLConnection {
    /// Marks the open transaction as one that made work (a runnable run, queued mail): PostgreSQL
    /// sends `NOTIFY signoff_work` with its COMMIT. Nothing on SQLite (waiters poll a change counter).
    func notifyWork() {}

    func pipeline(_ statements: [SQLStatement], commit: Bool) throws -> [[SQLRow]] {
        try statements.map { try query($0) }
    }

    @discardableResult
    func query(_ statement: SQLStatement) throws -> [SQLRow] { try query(statement.sql, statement.allParams) }

    @discardableResult
    func query(_ sql: String, _ params: SQLValue...) throws -> [SQLRow] { try query(sql, params) }
}
