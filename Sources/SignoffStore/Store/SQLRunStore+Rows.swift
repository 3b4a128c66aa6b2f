import Crypto
import Foundation
import Synchronization

/// Column lists and row decoding, shared by every query.
extension SQLRunStore {
    static let runColumns = "id, job, status, attempt, rerun_of, lease_owner, lease_expires_at, claims, requested_by, unique_key, input, output, error, checkpoint_seq, not_before, created_at, started_at, updated_at, finished_at"
    static func runColumns(_ alias: String) -> String { qualify(runColumns, alias) }
    /// Number of columns in `runColumns`.
    static let runColumnCount = 19

    static func decodeRun(_ row: SQLRow, _ o: Int = 0) throws -> RunRecord {
        let statusText = try row.requiredString(o + 2)
        guard let status = RunStatus(rawValue: statusText) else {
            throw StoreError(.corrupt, "run \(row.string(o) ?? "?") has an unknown status \(statusText)")
        }
        return RunRecord(
            id: try row.requiredString(o), job: try row.requiredString(o + 1), status: status,
            attempt: try row.requiredInt(o + 3), rerunOf: row.string(o + 4), leaseOwner: row.string(o + 5),
            leaseExpiresAt: row.date(o + 6), claims: try row.requiredInt(o + 7), requestedBy: row.string(o + 8),
            uniqueKey: row.string(o + 9), input: try row.requiredData(o + 10), output: row.data(o + 11),
            error: row.string(o + 12), checkpointSequence: try row.requiredInt(o + 13), notBefore: row.date(o + 14),
            createdAt: try row.requiredDate(o + 15), startedAt: row.date(o + 16), updatedAt: try row.requiredDate(o + 17),
            finishedAt: row.date(o + 18))
    }

    static let requestColumns = "id, run_id, executor_id, step_id, request_type, request_data, response_type, status, reviewers, quorum, reject_on, due_at, remind_at, reminders_sent, policy, response, decision, answered_by, answered_via, answered_at, delivered_at, created_at"

    /// Number of columns in `requestColumns`.
    static let requestColumnCount = 22

    /// `requestColumns` as `q.id, q.run_id, …` (built once, not per answer).
    static let qualifiedRequestColumns = qualify(requestColumns, "q")
    /// `checkpointColumns` as `c.id, c.run_id, …`.
    static let qualifiedCheckpointColumns = qualify(checkpointColumns, "c")

    static func qualify(_ columns: String, _ alias: String) -> String {
        columns.split(separator: ",").map { "\(alias)." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
    }

    static func decodeRequest(_ row: SQLRow, _ o: Int = 0) throws -> RequestRecord {
        let statusText = try row.requiredString(o + 7)
        guard let status = RequestStatus(rawValue: statusText) else {
            throw StoreError(.corrupt, "request \(row.string(o) ?? "?") has an unknown status \(statusText)")
        }
        return RequestRecord(
            id: try row.requiredString(o), runID: try row.requiredString(o + 1), executorID: try row.requiredString(o + 2),
            stepID: row.string(o + 3), requestType: try row.requiredString(o + 4), requestData: try row.requiredData(o + 5),
            responseType: try row.requiredString(o + 6), status: status, reviewers: parseJSONArray(row.string(o + 8)),
            quorum: Quorum(row.string(o + 9) ?? "any") ?? .any, rejectOn: RejectPolicy(rawValue: row.string(o + 10) ?? "any") ?? .any,
            dueAt: row.date(o + 11), remindAt: row.date(o + 12), remindersSent: row.int(o + 13) ?? 0, policy: row.data(o + 14),
            response: row.data(o + 15), decision: row.string(o + 16), answeredBy: row.string(o + 17), answeredVia: row.string(o + 18),
            answeredAt: row.date(o + 19), deliveredAt: row.date(o + 20), createdAt: try row.requiredDate(o + 21))
    }

    static let tokenColumns = "token_hash, request_id, run_id, reviewer, state, expires_at, message_id, issued_at, used_at"
    /// Number of columns in `tokenColumns`.
    static let tokenColumnCount = tokenColumns.split(separator: ",").count

    static func decodeToken(_ row: SQLRow) throws -> TokenRecord {
        TokenRecord(
            tokenHash: try row.requiredString(0), requestID: try row.requiredString(1), runID: try row.requiredString(2),
            reviewer: try row.requiredString(3), state: TokenState(rawValue: try row.requiredString(4)) ?? .revoked,
            expiresAt: row.date(5), messageID: row.string(6), issuedAt: try row.requiredDate(7), usedAt: row.date(8))
    }

    static let voteColumns = "request_id, reviewer, verdict, response, reason, channel, via, token_hash, answered_at"

    static func decodeVote(_ row: SQLRow) throws -> VoteRecord {
        VoteRecord(
            requestID: try row.requiredString(0), reviewer: try row.requiredString(1),
            verdict: Verdict(rawValue: try row.requiredString(2)) ?? .value, response: try row.requiredData(3),
            reason: row.string(4), channel: AnswerChannel(rawValue: try row.requiredString(5)) ?? .system,
            via: row.string(6), tokenHash: row.string(7), at: try row.requiredDate(8))
    }

    static let checkpointColumns = "id, run_id, seq, superstep, parent_id, data, created_at"

    static func decodeCheckpoint(_ row: SQLRow) throws -> CheckpointRecord {
        CheckpointRecord(
            id: try row.requiredString(0), runID: try row.requiredString(1), sequence: try row.requiredInt(2),
            superstep: try row.requiredInt(3), parentID: row.string(4), data: row.data(5) ?? Data(),
            createdAt: try row.requiredDate(6))
    }

    static let outboxColumns = "id, message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, last_error, sent_at, created_at"

    static func decodeMail(_ row: SQLRow) throws -> OutboxMail {
        OutboxMail(
            id: row.int64(0) ?? 0, messageID: try row.requiredString(1), kind: MailKind(try row.requiredString(2)),
            recipient: try row.requiredString(3), sender: row.string(4), raw: try row.requiredData(5),
            requestID: row.string(6), runID: row.string(7),
            status: OutboxStatus(rawValue: try row.requiredString(8)) ?? .pending, attempts: try row.requiredInt(9),
            nextAttemptAt: try row.requiredDate(10), lastError: row.string(11), sentAt: row.date(12),
            createdAt: try row.requiredDate(13))
    }

    static let eventColumns = "id, run_id, seq, kind, actor, data, at, prev_hash, hash"

    static func decodeEvent(_ row: SQLRow) throws -> EventRecord {
        EventRecord(
            id: row.int64(0) ?? 0, runID: try row.requiredString(1), sequence: try row.requiredInt(2),
            kind: try row.requiredString(3), actor: row.string(4), data: try row.requiredString(5),
            at: try row.requiredDate(6), prevHash: try row.requiredString(7), hash: try row.requiredString(8))
    }
}

/// An event about to be appended.
struct NewEvent: Sendable {
    var kind: String
    var actor: String?
    var data: [String: String]
}

/// The head of a run's audit chain.
struct ChainHead: Sendable {
    var sequence: Int
    var hash: String
}

/// Appending to the per-run hash chains.
extension SQLRunStore {
    /// Rows for `events` and the new chain head, computed from the current head.
    static func chain(runID: String, head: ChainHead, events: [NewEvent], at: Date) -> (rows: [[SQLValue]], head: ChainHead) {
        var head = head
        var rows: [[SQLValue]] = []
        for e in events {
            let (row, next) = chain(runID: runID, head: head, actor: e.actor,
                                    events: [ChainEvent(kind: e.kind, data: e.data.map { ($0.key, $0.value) })], at: at)
            rows += row
            head = next
        }
        return (rows, head)
    }

    /// The audit rows of `events` by one actor: the one place the chain's hash is computed.
    /// `hash` = SHA-256 of `prevHash` "\n" `EventRecord.canonicalContent`, whose details are
    /// canonical JSON (keys sorted, no whitespace; `canonicalJSON`), built here byte by byte.
    static func chain(runID: String, head: ChainHead, actor: String?, events: [ChainEvent],
                      at: Date) -> (rows: [[SQLValue]], head: ChainHead) {
        var head = head
        var rows: [[SQLValue]] = []
        rows.reserveCapacity(events.count)
        let atMillis = millis(at)
        var text = JSONText(capacity: 512)
        var input: [UInt8] = []
        for e in events {
            let seq = head.sequence + 1
            text.bytes.removeAll(keepingCapacity: true)
            text.bytes.append(UInt8(ascii: "{"))
            for (i, pair) in e.data.sorted(by: { $0.0 < $1.0 }).enumerated() {
                if i > 0 { text.bytes.append(UInt8(ascii: ",")) }
                text.string(pair.0, endAtNUL: false)
                text.bytes.append(UInt8(ascii: ":"))
                text.string(pair.1, endAtNUL: false)
            }
            text.bytes.append(UInt8(ascii: "}"))
            let data = String(decoding: text.bytes, as: UTF8.self)
            // prev_hash \n run_id \n seq \n kind \n actor \n at \n data (`EventRecord.canonicalContent`),
            // appended into one buffer reused for every event.
            let newline = UInt8(ascii: "\n")
            input.removeAll(keepingCapacity: true)
            input.append(contentsOf: head.hash.utf8)
            input.append(newline)
            input.append(contentsOf: runID.utf8)
            input.append(newline)
            appendDecimal(Int64(seq), to: &input)
            input.append(newline)
            input.append(contentsOf: e.kind.utf8)
            input.append(newline)
            if let actor { input.append(contentsOf: actor.utf8) }
            input.append(newline)
            appendDecimal(atMillis, to: &input)
            input.append(newline)
            input.append(contentsOf: text.bytes)
            let hash = hex(SHA256.hash(data: input))
            rows.append([.text(runID), .int(seq), .text(e.kind), .optional(actor), .text(data), .int(atMillis), .text(head.hash), .text(hash)])
            head = ChainHead(sequence: seq, hash: hash)
        }
        return (rows, head)
    }

    /// Inserts rows in multi-row statements of at most `chunk` rows.
    static func insertMany(_ conn: any SQLConnection, _ prefix: String, columns: Int, rows: [[SQLValue]],
                           suffix: String = "", chunk: Int = 400) throws {
        for statement in insertStatements(prefix, columns: columns, rows: rows, suffix: suffix, chunk: chunk) {
            try conn.query(statement)
        }
    }

    /// The multi-row INSERT statements for `rows` (for a pipeline).
    static func insertStatements(_ prefix: String, columns: Int, rows: [[SQLValue]], suffix: String = "",
                                 chunk: Int = 400) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        var start = 0
        while start < rows.count {
            let end = min(start + chunk, rows.count)
            statements.append(SQLStatement(insertSQL(prefix, columns: columns, rows: end - start, suffix: suffix), rows: rows[start..<end]))
            start = end
        }
        return statements
    }

    /// The text of an INSERT of `rows` rows, built once per shape (the hot paths insert the same
    /// few shapes over and over).
    static func insertSQL(_ prefix: String, columns: Int, rows: Int, suffix: String) -> String {
        let key = InsertShape(prefix: prefix, columns: columns, rows: rows, suffix: suffix)
        if let sql = insertSQLCache.withLock({ $0[key] }) { return sql }
        var sql = prefix + " VALUES "
        for i in 0..<rows {
            if i > 0 { sql += "," }
            sql += "(" + placeholders(columns, from: i * columns + 1) + ")"
        }
        sql += suffix
        insertSQLCache.withLock { cache in
            if cache.count > 512 { cache.removeAll() }
            cache[key] = sql
        }
        return sql
    }

    struct InsertShape: Hashable, Sendable {
        var prefix: String
        var columns: Int
        var rows: Int
        var suffix: String
    }

    static let insertSQLCache = Mutex<[InsertShape: String]>([:])

    static let insertEventsPrefix = "INSERT INTO events (run_id, seq, kind, actor, data, at, prev_hash, hash)"

    static func eventStatements(_ rows: [[SQLValue]]) -> [SQLStatement] {
        insertStatements(insertEventsPrefix, columns: 8, rows: rows)
    }

    static func insertEvents(_ conn: any SQLConnection, _ rows: [[SQLValue]]) throws {
        try insertMany(conn, "INSERT INTO events (run_id, seq, kind, actor, data, at, prev_hash, hash)", columns: 8, rows: rows)
    }

    /// Writes new chain heads for many runs in one statement per chunk.
    static func updateHeads(_ conn: any SQLConnection, _ heads: [(String, ChainHead)]) throws {
        if heads.count == 1 {
            try conn.query("UPDATE runs SET event_seq = $2, last_hash = $3 WHERE id = $1",
                           .text(heads[0].0), .int(heads[0].1.sequence), .text(heads[0].1.hash))
            return
        }
        var start = 0
        while start < heads.count {
            let end = min(start + 400, heads.count)
            var values: [String] = []
            var params: [SQLValue] = []
            for (i, (id, head)) in heads[start..<end].enumerated() {
                values.append("($\(i * 3 + 1), CAST($\(i * 3 + 2) AS integer), $\(i * 3 + 3))")
                params += [.text(id), .int(head.sequence), .text(head.hash)]
            }
            try conn.query("""
                UPDATE runs SET event_seq = v.seq, last_hash = v.hash
                FROM (SELECT column1 AS id, column2 AS seq, column3 AS hash FROM (VALUES \(values.joined(separator: ","))) AS t) AS v
                WHERE runs.id = v.id
                """, params)
            start = end
        }
    }

    /// Appends events to one run's chain (locking the run row on PostgreSQL).
    func appendEvents(_ conn: any SQLConnection, runID: String, events: [NewEvent], now: Date, head known: ChainHead? = nil) throws {
        guard !events.isEmpty else { return }
        let head: ChainHead
        if let known {
            head = known
        } else {
            guard let row = try conn.query("SELECT event_seq, last_hash FROM runs WHERE id = $1" + forUpdate, .text(runID)).first else {
                throw StoreError(.notFound, "no run \(runID)")
            }
            head = ChainHead(sequence: try row.requiredInt(0), hash: row.string(1) ?? "")
        }
        let (rows, newHead) = Self.chain(runID: runID, head: head, events: events, at: now)
        try Self.insertEvents(conn, rows)
        try Self.updateHeads(conn, [(runID, newHead)])
    }
}
