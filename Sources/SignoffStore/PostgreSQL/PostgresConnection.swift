import CLibpq
import Foundation

/// One libpq connection with a prepared-statement cache.
/// Not thread-safe: owned by one `ConnectionHandle` and used only on its serial queue.
final class PostgresConnection: SQLConnection {
    let dialect = SQLDialect.postgres
    private var conn: OpaquePointer?
    private var prepared: [String: String] = [:]
    private var lastBroken = false
    /// BEGIN not sent yet: it goes out in one pipeline with the transaction's first statement.
    private var pendingBegin = false
    /// Send `NOTIFY signoff_work` with this transaction's COMMIT (one round trip).
    private var notifyOnCommit = false
    let redactedTarget: String

    init(conninfo: String, redactedTarget: String) throws {
        self.redactedTarget = redactedTarget
        let handle = PQconnectdb(conninfo)
        if PQstatus(handle) != CONNECTION_OK {
            // Read the error text before PQfinish frees it; PQfinish even after a failed connect.
            let detail = handle.map { Self.firstLine(String(cString: PQerrorMessage($0))) } ?? "out of memory"
            PQfinish(handle)
            throw Self.connectError(redactedTarget, detail)
        }
        conn = handle
        try configure()
    }

    deinit { close() }

    static func connectError(_ target: String, _ detail: String) -> StoreError {
        let lower = detail.lowercased()
        let unreachable = ["connection refused", "no such file or directory", "timeout", "timed out", "could not translate host",
                           "network is unreachable", "no route to host", "the database system is"].contains { lower.contains($0) }
        let hint = unreachable ? "is the server running? check" : "check"
        return StoreError(.connectionFailed, "could not connect to PostgreSQL at \(target): \(detail); \(hint) `database:` in signoff.yaml (or --database / $SIGNOFF_DATABASE)")
    }

    static func firstLine(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// Session settings. `plan_cache_mode`: every prepared statement is planned once per connection
    /// (its generic plan), never again per execution. The store's statements look rows up by key
    /// or walk an index in order whatever the values, so a plan for the actual values is never
    /// better; but for a statement reading a list of keys (`unnest($1::text[])`) PostgreSQL compares
    /// the generic plan's guess (10 keys) with a custom plan for the 1–2 keys of the moment, keeps
    /// planning each execution anew, and planning then costs more than running the statement.
    /// `enable_seqscan` off: a plan made once while a table is still small would be a scan of the
    /// whole table, kept for the connection's life as the table grows; off, the planner takes the
    /// index whenever one serves the query (a query that no index serves still scans the table).
    /// Both apply to the store's own connections only, never to other sessions on the database.
    private func configure() throws {
        try exec("SET client_min_messages TO warning; SET plan_cache_mode TO force_generic_plan; SET enable_seqscan TO off")
    }

    func close() {
        if let conn {
            PQfinish(conn)
            self.conn = nil
        }
        prepared.removeAll()
    }

    private func handle() throws -> OpaquePointer {
        guard let conn else { throw StoreError(.closed, "the PostgreSQL connection to \(redactedTarget) is closed") }
        return conn
    }

    func isBroken() -> Bool {
        guard let conn else { return true }
        return lastBroken || PQstatus(conn) == CONNECTION_BAD
    }

    func reset() throws {
        let conn = try handle()
        prepared.removeAll()
        pendingBegin = false
        notifyOnCommit = false
        committedEarly = false
        PQreset(conn)
        guard PQstatus(conn) == CONNECTION_OK else {
            let detail = Self.firstLine(String(cString: PQerrorMessage(conn)))
            lastBroken = true
            throw Self.connectError(redactedTarget, detail)
        }
        lastBroken = false
        try configure()
    }

    /// Turns a failed result into an error (reading its text at once), or returns nil on success.
    private func check(_ res: OpaquePointer?, _ sql: String) -> StoreError? {
        let status = res.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK { return nil }
        let conn = self.conn
        var message = res.map { String(cString: PQresultErrorMessage($0)) } ?? ""
        if message.isEmpty, let conn { message = String(cString: PQerrorMessage(conn)) }
        let state = res.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        message = Self.firstLine(message)
        if conn.map({ PQstatus($0) == CONNECTION_BAD }) ?? true || state?.hasPrefix("08") == true || state == "57P01" {
            lastBroken = true
            return StoreError(.connectionLost, "lost the connection to PostgreSQL at \(redactedTarget): \(message)")
        }
        if state == "40001" || state == "40P01" {
            return StoreError(.busy, "PostgreSQL: \(message) (SQLSTATE \(state ?? "?")); retry the operation")
        }
        if state == "53100" {  // disk_full
            return StoreError(.diskFull, "the PostgreSQL server at \(redactedTarget) has no disk space left (\(message)); nothing was written: free space on the server, then run the command again")
        }
        return StoreError(.queryFailed, "PostgreSQL: \(message)\(state.map { " (SQLSTATE \($0))" } ?? "") (in `\(sql.prefix(120))`)")
    }

    func exec(_ sql: String) throws {
        let conn = try handle()
        let text = pendingBegin ? "BEGIN; " + sql : sql
        pendingBegin = false
        let res = PQexec(conn, text)
        defer { PQclear(res) }
        if let error = check(res, sql) { throw error }
    }

    private func statementName(_ sql: String, parameterCount: Int) throws -> String {
        if let name = prepared[sql] { return name }
        let conn = try handle()
        let name = "s\(prepared.count + 1)"
        let res = PQprepare(conn, name, sql, 0, nil)
        defer { PQclear(res) }
        if let error = check(res, sql) { throw error }
        prepared[sql] = name
        return name
    }

    /// Parameters in libpq's form, all in one buffer (one allocation per statement, not one per
    /// parameter): text for everything but bytes (binary), each text value ending in NUL.
    private struct EncodedParams {
        var bytes: [UInt8] = []
        /// Where each value starts in `bytes`; -1 for NULL.
        var offsets: [Int] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []

        init(_ params: [SQLValue]) {
            offsets.reserveCapacity(params.count)
            lengths.reserveCapacity(params.count)
            formats.reserveCapacity(params.count)
            var size = 0
            for value in params {
                switch value {
                case .null: break
                case .int: size += 21
                case .double: size += 32
                case .text(let s): size += s.utf8.count + 1
                case .blob(let d): size += d.count + 1
                }
            }
            bytes.reserveCapacity(size)
            for value in params {
                switch value {
                case .null:
                    offsets.append(-1); lengths.append(0); formats.append(0)
                case .int(let v):
                    offsets.append(bytes.count); lengths.append(0); formats.append(0)
                    appendDecimal(v, to: &bytes)
                    bytes.append(0)
                case .double(let v):
                    offsets.append(bytes.count); lengths.append(0); formats.append(0)
                    bytes.append(contentsOf: "\(v)".utf8)
                    bytes.append(0)
                case .text(var s):
                    offsets.append(bytes.count); lengths.append(0); formats.append(0)
                    s.withUTF8 { bytes.append(contentsOf: $0) }
                    bytes.append(0)
                case .blob(let d):
                    offsets.append(bytes.count); lengths.append(Int32(d.count)); formats.append(1)
                    bytes.append(contentsOf: d)
                    bytes.append(0)
                }
            }
        }

        /// Calls `body` with a pointer per value (nil for NULL), valid during the call.
        func withPointers<R>(_ body: ([UnsafePointer<CChar>?]) -> R) -> R {
            bytes.withUnsafeBufferPointer { buffer in
                let base = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
                let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                    offset < 0 ? nil : base.map { UnsafePointer($0 + offset) }
                }
                return body(pointers)
            }
        }
    }

    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow] {
        let conn = try handle()
        let name = try statementName(sql, parameterCount: params.count)
        let encoded = EncodedParams(params)
        let begin = pendingBegin
        pendingBegin = false
        let res = encoded.withPointers { pointers in
            begin ? pipelinedWithBegin(conn, name, Int32(params.count), pointers, encoded.lengths, encoded.formats)
                : PQexecPrepared(conn, name, Int32(params.count), pointers, encoded.lengths, encoded.formats, 0)
        }
        defer { PQclear(res) }
        if let error = check(res, sql) { throw error }
        return Self.rows(res)
    }

    /// Set when a pipeline carried the transaction's COMMIT: the wrapper's `commit()` then does nothing.
    private var committedEarly = false

    /// Sends BEGIN (if pending), every statement, and with `commit` NOTIFY (if asked for) and COMMIT,
    /// in one pipeline: one round trip for the lot. Results are read in order; the first failure is
    /// thrown (the statements after it were not run).
    func pipeline(_ statements: [SQLStatement], commit: Bool) throws -> [[SQLRow]] {
        let conn = try handle()
        let statements = statements.map { $0.rows.isEmpty ? $0 : SQLStatement($0.sql, $0.allParams) }
        let names = try statements.map { try statementName($0.sql, parameterCount: $0.params.count) }
        let begin = pendingBegin
        pendingBegin = false
        let notify = commit && notifyOnCommit
        guard PQenterPipelineMode(conn) == 1 else {
            // Not possible in this state: plain round trips.
            if begin { try exec("BEGIN") }
            let rows = try statements.map { try query($0.sql, $0.params) }
            if commit { try self.commit(); committedEarly = true }
            return rows
        }
        var labels: [String] = []
        var sentOK = true
        func sendSimple(_ sql: String) {
            if sentOK { sentOK = PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1 }
            labels.append(sql)
        }
        if begin { sendSimple("BEGIN") }
        for (i, statement) in statements.enumerated() where sentOK {
            let encoded = EncodedParams(statement.params)
            sentOK = encoded.withPointers { pointers in
                PQsendQueryPrepared(conn, names[i], Int32(statement.params.count), pointers, encoded.lengths, encoded.formats, 0) == 1
            }
            labels.append(statement.sql)
        }
        if commit {
            if notify { sendSimple("NOTIFY \(workChannel)") }
            sendSimple("COMMIT")
        }
        if sentOK { sentOK = PQpipelineSync(conn) == 1 }
        var results: [OpaquePointer?] = []
        if sentOK {
            for _ in labels { results.append(Self.nextPipelineResult(conn)) }
            var sync = Self.nextPipelineResult(conn)
            while let r = sync, PQresultStatus(r) != PGRES_PIPELINE_SYNC {
                PQclear(r)
                sync = Self.nextPipelineResult(conn)
            }
            if let sync { PQclear(sync) }
        }
        if PQexitPipelineMode(conn) != 1 { lastBroken = true }
        defer { for r in results { PQclear(r) } }
        if !sentOK {
            lastBroken = true
            throw StoreError(.connectionLost, "lost the connection to PostgreSQL at \(redactedTarget): \(Self.firstLine(String(cString: PQerrorMessage(conn))))")
        }
        var output: [[SQLRow]] = []
        for (i, res) in results.enumerated() {
            if let error = check(res, labels[i]) {
                // Nothing ran if the first command never answered; past that, a COMMIT sent in this
                // pipeline may or may not have been applied.
                if error.code == .connectionLost && commit && i > 0 {
                    throw CommitOutcomeUnknown(error: StoreError(.connectionLost, error.message + "; the outcome of the last commit is unknown, check the run before retrying"))
                }
                throw error
            }
            let first = begin ? 1 : 0
            if i >= first && i < first + statements.count { output.append(Self.rows(res)) }
        }
        if commit { committedEarly = true }
        return output
    }

    /// The first result of the next command in a pipeline (the rest, up to its NULL, cleared).
    private static func nextPipelineResult(_ conn: OpaquePointer) -> OpaquePointer? {
        let first = PQgetResult(conn)
        if first == nil || PQresultStatus(first) == PGRES_PIPELINE_SYNC { return first }
        while let extra = PQgetResult(conn) { PQclear(extra) }
        return first
    }

    /// Decodes a successful result's rows.
    private static func rows(_ res: OpaquePointer?) -> [SQLRow] {
        guard let res else { return [] }
        let rowCount = PQntuples(res)
        let columnCount = PQnfields(res)
        if rowCount == 0 { return [] }
        var types: [Oid] = []
        for c in 0..<columnCount { types.append(PQftype(res, c)) }
        var rows: [SQLRow] = []
        rows.reserveCapacity(Int(rowCount))
        for r in 0..<rowCount {
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columnCount))
            for c in 0..<columnCount {
                if PQgetisnull(res, r, c) != 0 { values.append(.null); continue }
                let raw = PQgetvalue(res, r, c)!
                let length = Int(PQgetlength(res, r, c))
                switch types[Int(c)] {
                case 20, 21, 23:
                    values.append(.int(parseInt(raw, length)))
                case 16:
                    values.append(.int(raw[0] == CChar(UInt8(ascii: "t")) ? 1 : 0))
                case 700, 701:
                    values.append(.double(Double(String(cString: raw)) ?? 0))
                case 17:
                    values.append(.blob(decodeHexBytea(raw, length)))
                default:
                    values.append(.text(String(cString: raw)))
                }
            }
            rows.append(SQLRow(values: values))
        }
        return rows
    }

    /// Sends BEGIN and the prepared statement in one pipeline (one round trip) and returns the
    /// statement's result, or BEGIN's if BEGIN failed.
    private func pipelinedWithBegin(_ conn: OpaquePointer, _ name: String, _ count: Int32, _ values: [UnsafePointer<CChar>?],
                                    _ lengths: [Int32], _ formats: [Int32]) -> OpaquePointer? {
        guard PQenterPipelineMode(conn) == 1 else {
            let begin = PQexec(conn, "BEGIN")
            guard PQresultStatus(begin) == PGRES_COMMAND_OK else { return begin }
            PQclear(begin)
            return PQexecPrepared(conn, name, count, values, lengths, formats, 0)
        }
        guard PQsendQueryParams(conn, "BEGIN", 0, nil, nil, nil, nil, 0) == 1,
              PQsendQueryPrepared(conn, name, count, values, lengths, formats, 0) == 1,
              PQpipelineSync(conn) == 1 else {
            lastBroken = true
            return nil
        }
        func next() -> OpaquePointer? { Self.nextPipelineResult(conn) }
        let beginResult = next()
        let result = next()
        var sync = next()
        while let r = sync, PQresultStatus(r) != PGRES_PIPELINE_SYNC {
            PQclear(r)
            sync = next()
        }
        if let sync { PQclear(sync) }
        if PQexitPipelineMode(conn) != 1 { lastBroken = true }
        let beginFailed = beginResult.map { PQresultStatus($0) != PGRES_COMMAND_OK } ?? true
        if beginFailed {
            PQclear(result)
            return beginResult
        }
        PQclear(beginResult)
        return result
    }

    private static func parseInt(_ p: UnsafePointer<CChar>, _ length: Int) -> Int64 {
        var value: Int64 = 0
        var i = 0
        var negative = false
        if length > 0 && p[0] == CChar(UInt8(ascii: "-")) { negative = true; i = 1 }
        while i < length {
            value = value * 10 + Int64(UInt8(bitPattern: p[i]) - 48)
            i += 1
        }
        return negative ? -value : value
    }

    /// bytea in text format is `\x` followed by hex digits.
    private static func decodeHexBytea(_ p: UnsafePointer<CChar>, _ length: Int) -> Data {
        guard length >= 2, p[0] == CChar(UInt8(ascii: "\\")), p[1] == CChar(UInt8(ascii: "x")) else {
            return Data(bytes: p, count: length)
        }
        let count = (length - 2) / 2
        var data = Data(count: count)
        data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
            func nibble(_ c: CChar) -> UInt8 {
                let u = UInt8(bitPattern: c)
                switch u {
                case 48...57: return u - 48
                case 97...102: return u - 87
                case 65...70: return u - 55
                default: return 0
                }
            }
            var j = 2
            for k in 0..<count {
                out[k] = nibble(p[j]) << 4 | nibble(p[j + 1])
                j += 2
            }
        }
        return data
    }

    func begin(write: Bool) throws {
        _ = try handle()
        pendingBegin = true
        notifyOnCommit = false
        committedEarly = false
    }

    func commit() throws {
        let notify = notifyOnCommit
        notifyOnCommit = false
        if committedEarly {
            committedEarly = false
            return
        }
        if pendingBegin {
            // Nothing ran in this transaction: nothing to commit (and no work was made).
            pendingBegin = false
            return
        }
        try exec(notify ? "NOTIFY \(workChannel); COMMIT" : "COMMIT")
    }

    func notifyWork() { notifyOnCommit = true }

    func rollback() {
        notifyOnCommit = false
        committedEarly = false
        if pendingBegin {
            pendingBegin = false
            return
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else { return }
        if PQtransactionStatus(conn) != PQTRANS_IDLE {
            let res = PQexec(conn, "ROLLBACK")
            PQclear(res)
        }
    }
}
