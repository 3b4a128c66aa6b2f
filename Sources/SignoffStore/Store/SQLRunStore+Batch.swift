import Foundation

/// The import batch: many inbound messages in one write transaction, written set-based
/// (`writeAnswers`, SQLRunStore+Answers.swift): one dedupe read for the batch, one statement per
/// table, no savepoint per message unless a write fails mid-way.
extension SQLRunStore {
    func recordInboundBatch(_ writes: [InboundWrite], now: Date) async throws -> [InboundWriteResult] {
        if writes.isEmpty { return [] }
        do {
            return try await pool.write { conn in
                try self.writeAnswers(writes, importing: true, on: conn, commit: true, now: now).map(\.inboundResult)
            }
        } catch let error as StoreError where Self.isStatementFailure(error) {
            // A write failed mid-way: the batch again, each write in its own savepoint, so only the
            // failing one is left out.
            return try await pool.write { conn in
                var results: [InboundWriteResult] = []
                results.reserveCapacity(writes.count)
                for write in writes {
                    try conn.exec("SAVEPOINT signoff_inbound")
                    do {
                        let outcome = try self.writeAnswers([write], importing: true, on: conn, commit: false, now: now)[0]
                        try conn.exec("RELEASE SAVEPOINT signoff_inbound")
                        results.append(outcome.inboundResult)
                    } catch let error as StoreError where Self.isStatementFailure(error) {
                        try conn.exec("ROLLBACK TO SAVEPOINT signoff_inbound")
                        try conn.exec("RELEASE SAVEPOINT signoff_inbound")
                        results.append(.failed(error))
                    }
                }
                return results
            }
        }
    }

    func tokenLookups(tokenHashes: [String]) async throws -> [String: TokenMatch] {
        let hashes = Array(Set(tokenHashes))
        if hashes.isEmpty { return [:] }
        if dialect == .postgres {
            // One round trip: the tokens, their requests and their runs, each found by one index
            // lookup per key.
            let list = listParam(hashes)
            let found = try await pool.read { conn in
                try conn.pipeline([SQLStatement(Self.tokensByHashSQL, [list]), SQLStatement(Self.requestsOfTokensSQL, [list]),
                                   SQLStatement(Self.runsOfTokensSQL, [list])], commit: false)
            }
            var requests: [String: RequestRecord] = [:]
            for row in found[1] {
                let r = try Self.decodeRequest(row)
                requests[r.id] = r
            }
            var runs: [String: RunRecord] = [:]
            for row in found[2] {
                let run = try Self.decodeRun(row)
                runs[run.id] = run
            }
            var out: [String: TokenMatch] = [:]
            for row in found[0] {
                let t = try Self.decodeToken(row)
                if let r = requests[t.requestID] { out[t.tokenHash] = TokenMatch(token: t, request: r, run: runs[r.runID]) }
            }
            return out
        }
        // SQLite: the tokens, their requests and their runs in one statement (one JSON list
        // parameter, so one cached statement whatever the batch's size), on the lookup connection
        // when there is one: it reads the last commit while the writer commits the next batches
        // (the pass defers a message whose request a batch in flight answers).
        let list = listParam(hashes)
        let lookup: @Sendable (any SQLConnection) throws -> [String: TokenMatch] = { conn in
            var out: [String: TokenMatch] = [:]
            var requests: [String: RequestRecord] = [:]
            var runs: [String: RunRecord] = [:]
            let requestStart = Self.tokenColumnCount, runStart = Self.tokenColumnCount + Self.requestColumnCount
            for row in try conn.query(Self.tokensWithRequestsSQLite, [list]) {
                let token = try Self.decodeToken(row)
                let request: RequestRecord
                if let known = requests[token.requestID] {
                    request = known
                } else {
                    request = try Self.decodeRequest(row, requestStart)
                    requests[request.id] = request
                }
                let run: RunRecord
                if let known = runs[request.runID] {
                    run = known
                } else {
                    run = try Self.decodeRun(row, runStart)
                    runs[run.id] = run
                }
                out[token.tokenHash] = TokenMatch(token: token, request: request, run: run)
            }
            return out
        }
        guard let reader = lookupReader else { return try await pool.read(lookup) }
        if pool.isClosed { throw StoreError(.closed, "the store is closed") }
        return try await reader.read(lookup)
    }

    /// SQLite: the tokens of the hashes in the JSON list `$1`, each with its request's and its
    /// run's columns.
    static let tokensWithRequestsSQLite = """
        SELECT \(qualify(tokenColumns, "t")), \(qualifiedRequestColumns), \(runColumns("r"))
        FROM request_tokens t JOIN requests q ON q.id = t.request_id JOIN runs r ON r.id = q.run_id
        WHERE t.token_hash IN (SELECT value FROM json_each($1))
        """

    /// PostgreSQL: the tokens of the hashes in `$1` (one index lookup per key: with `= ANY` the
    /// planner scans the whole table once the list is long).
    static let tokensByHashSQL = """
        SELECT t.* FROM unnest($1::text[]) AS k(key)
        CROSS JOIN LATERAL (SELECT \(tokenColumns) FROM request_tokens WHERE token_hash = k.key OFFSET 0) AS t
        """
    /// PostgreSQL: the runs of the tokens of the hashes in `$1` (as for the requests, joined inside
    /// the lateral subquery).
    static let runsOfTokensSQL = """
        SELECT x.* FROM unnest($1::text[]) AS k(key)
        CROSS JOIN LATERAL (SELECT \(runColumns("r")) FROM request_tokens t JOIN runs r ON r.id = t.run_id
                            WHERE t.token_hash = k.key OFFSET 0) AS x
        """
    /// PostgreSQL: the requests of the tokens of the hashes in `$1` (the join inside the lateral
    /// subquery: joined outside it, the planner hashes a scan of the whole requests table).
    static let requestsOfTokensSQL = """
        SELECT x.* FROM unnest($1::text[]) AS k(key)
        CROSS JOIN LATERAL (SELECT \(qualifiedRequestColumns) FROM request_tokens t JOIN requests q ON q.id = t.request_id
                            WHERE t.token_hash = k.key OFFSET 0) AS x
        """

    func runs(ids: [String]) async throws -> [String: RunRecord] {
        let unique = Array(Set(ids))
        if unique.isEmpty { return [:] }
        let sql = dialect == .postgres
            ? "SELECT r.* FROM unnest($1::text[]) AS k(key) CROSS JOIN LATERAL (SELECT \(Self.runColumns) FROM runs WHERE id = k.key OFFSET 0) AS r"
            : "SELECT \(Self.runColumns) FROM runs WHERE id IN (SELECT value FROM json_each($1))"
        let list = listParam(unique)
        return try await pool.read { conn in
            var out: [String: RunRecord] = [:]
            for row in try conn.query(sql, [list]) {
                let run = try Self.decodeRun(row)
                out[run.id] = run
            }
            return out
        }
    }
}
