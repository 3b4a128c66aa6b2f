import Foundation

/// Enqueueing, listing, cancelling and re-running runs.
extension SQLRunStore {
    private static let insertRunColumns = "id, job, status, attempt, rerun_of, requested_by, unique_key, input, not_before, created_at, updated_at, event_seq, last_hash"

    /// The row values for a new run and its `enqueued` event (the first link of its chain).
    private static func newRunRow(_ run: NewRun, id: String, attempt: Int, now: Date) -> (run: [SQLValue], event: [SQLValue]) {
        var data = ["job": run.job]
        if let by = run.requestedBy { data["requested_by"] = by }
        if let of = run.rerunOf { data["rerun_of"] = of }
        let (rows, head) = chain(runID: id, head: ChainHead(sequence: 0, hash: ""),
                                 events: [NewEvent(kind: "enqueued", actor: run.requestedBy, data: data)], at: now)
        let row: [SQLValue] = [.text(id), .text(run.job), .text("queued"), .int(attempt), .optional(run.rerunOf),
                               .optional(run.requestedBy), .optional(run.uniqueKey), json(run.input),
                               .time(run.notBefore), .time(now), .time(now), .int(head.sequence), .text(head.hash)]
        return (row, rows[0])
    }

    func enqueue(_ run: NewRun, now: Date) async throws -> (run: RunRecord, created: Bool) {
        let id = Self.makeID(now)
        return try await pool.write { conn in
            var attempt = 1
            if let of = run.rerunOf {
                guard let prior = try conn.query("SELECT attempt FROM runs WHERE id = $1", .text(of)).first else {
                    throw StoreError(.notFound, "no run \(of) to re-run; check the id with `signoff history`")
                }
                attempt = (prior.int(0) ?? 1) + 1
            }
            let (row, event) = Self.newRunRow(run, id: id, attempt: attempt, now: now)
            let inserted = try conn.query(
                "INSERT INTO runs (\(Self.insertRunColumns)) VALUES (\(Self.placeholders(13, from: 1))) ON CONFLICT DO NOTHING RETURNING \(Self.runColumns)",
                row)
            if let first = inserted.first {
                try Self.insertEvents(conn, [event])
                conn.notifyWork()
                return (try Self.decodeRun(first), true)
            }
            guard let key = run.uniqueKey,
                  let existing = try conn.query("SELECT \(Self.runColumns) FROM runs WHERE unique_key = $1", .text(key)).first else {
                throw StoreError(.queryFailed, "could not enqueue a run of \(run.job)")
            }
            return (try Self.decodeRun(existing), false)
        }
    }

    func enqueueMany(_ runs: [NewRun], now: Date) async throws -> [RunRecord] {
        guard !runs.isEmpty else { return [] }
        let prepared = runs.map { run -> (String, [SQLValue], [SQLValue]) in
            let id = Self.makeID(now)
            let (row, event) = Self.newRunRow(run, id: id, attempt: 1, now: now)
            return (id, row, event)
        }
        return try await pool.write { conn in
            var records: [RunRecord] = []
            var start = 0
            while start < prepared.count {
                let end = min(start + 300, prepared.count)
                var sql = "INSERT INTO runs (\(Self.insertRunColumns)) VALUES "
                var params: [SQLValue] = []
                for (i, p) in prepared[start..<end].enumerated() {
                    if i > 0 { sql += "," }
                    sql += "(" + Self.placeholders(13, from: i * 13 + 1) + ")"
                    params += p.1
                }
                let rows = try conn.query(sql + " ON CONFLICT DO NOTHING RETURNING \(Self.runColumns)", params)
                let created = try rows.map { try Self.decodeRun($0) }
                let createdIDs = Set(created.map(\.id))
                if !created.isEmpty { conn.notifyWork() }
                try Self.insertEvents(conn, prepared[start..<end].filter { createdIDs.contains($0.0) }.map(\.2))
                records += created
                start = end
            }
            return records
        }
    }

    func run(id: String) async throws -> RunRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.runColumns) FROM runs WHERE id = $1", .text(id)).first.map { try Self.decodeRun($0) }
        }
    }

    func runs(filter: RunFilter) async throws -> [RunRecord] {
        var clauses: [String] = []
        var params: [SQLValue] = []
        if let job = filter.job {
            params.append(.text(job)); clauses.append("job = $\(params.count)")
        }
        if !filter.statuses.isEmpty {
            let first = params.count + 1
            params += filter.statuses.map { .text($0.rawValue) }
            clauses.append("status IN (\(Self.placeholders(filter.statuses.count, from: first)))")
        }
        if let since = filter.since {
            params.append(.time(since)); clauses.append("created_at >= $\(params.count)")
        }
        params.append(.int(max(1, filter.limit)))
        let whereClause = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT \(Self.runColumns) FROM runs\(whereClause) ORDER BY created_at DESC, id DESC LIMIT $\(params.count)"
        let bound = params
        return try await pool.read { conn in try conn.query(sql, bound).map { try Self.decodeRun($0) } }
    }

    func cancel(runID: String, by actor: String?, reason: String?, now: Date) async throws -> RunRecord {
        try await pool.write { conn in
            guard let row = try conn.query("SELECT \(Self.runColumns) FROM runs WHERE id = $1" + self.forUpdate, .text(runID)).first else {
                throw StoreError(.notFound, "no run \(runID); check the id with `signoff history`")
            }
            let run = try Self.decodeRun(row)
            if run.status.isTerminal {
                throw StoreError(.invalidState, "run \(runID) is already \(run.status.rawValue); only queued, running or waiting runs can be cancelled")
            }
            try Self.closeRequests(conn, runIDs: [runID], status: .cancelled, now: now)
            let updated = try conn.query("""
                UPDATE runs SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error = $2,
                    finished_at = $3, updated_at = $3 WHERE id = $1 RETURNING \(Self.runColumns)
                """, .text(runID), .optional(reason), .time(now))
            var data = ["from": run.status.rawValue]
            if let reason { data["reason"] = reason }
            try self.appendEvents(conn, runID: runID, events: [NewEvent(kind: "cancelled", actor: actor, data: data)], now: now)
            return try Self.decodeRun(updated[0])
        }
    }

    /// Cancels (or expires) the pending requests of runs and revokes their active tokens.
    static func closeRequests(_ conn: any SQLConnection, runIDs: [String], status: RequestStatus, now: Date) throws {
        guard !runIDs.isEmpty else { return }
        for statement in closeRequestStatements(runIDs: runIDs, status: status) { try conn.query(statement) }
    }

    /// The statements of `closeRequests` (for a pipeline).
    static func closeRequestStatements(runIDs: [String], status: RequestStatus) -> [SQLStatement] {
        guard !runIDs.isEmpty else { return [] }
        let ids = runIDs.map { SQLValue.text($0) }
        return [
            SQLStatement("""
                UPDATE request_tokens SET state = 'revoked' WHERE state = 'active' AND request_id IN
                  (SELECT id FROM requests WHERE run_id IN (\(placeholders(runIDs.count, from: 1))) AND status = 'pending')
                """, ids),
            SQLStatement("UPDATE requests SET status = $1 WHERE run_id IN (\(placeholders(runIDs.count, from: 2))) AND status = 'pending'",
                         [.text(status.rawValue)] + ids),
        ]
    }

    func rerun(runID: String, requestedBy: String?, now: Date) async throws -> RunRecord {
        guard let old = try await run(id: runID) else {
            throw StoreError(.notFound, "no run \(runID); check the id with `signoff history`")
        }
        guard old.status.isTerminal else {
            throw StoreError(.invalidState, "run \(runID) is \(old.status.rawValue), not finished; only finished runs (failed, rejected, cancelled, expired, succeeded) can be re-run")
        }
        let (record, _) = try await enqueue(NewRun(job: old.job, input: old.input, requestedBy: requestedBy ?? old.requestedBy,
                                                   rerunOf: old.id), now: now)
        return record
    }
}
