import Foundation
import Synchronization

/// Claiming runs under a lease, and every write a runner makes under it (fenced by owner + claim count).
extension SQLRunStore {
    static let fence = "id = $1 AND lease_owner = $2 AND claims = $3 AND status = 'running'"

    static func fenceParams(_ lease: Lease) -> [SQLValue] {
        [.text(lease.runID), .text(lease.owner), .int(lease.fence)]
    }

    static func leaseLost(_ lease: Lease) -> StoreError {
        StoreError(.leaseLost, "run \(lease.runID) is no longer leased to \(lease.owner) (its lease expired and another runner claimed it, or it was cancelled); stop working on it, its new owner resumes from the last checkpoint")
    }

    func claimRuns(owner: String, limit: Int, leaseSeconds: Double, now: Date) async throws -> [ClaimedRun] {
        guard limit > 0 else { return [] }
        return try await claimBatcher.submit(ClaimOperation(owner: owner, limit: limit, leaseSeconds: leaseSeconds, now: now))
    }

    /// The claims of several callers (concurrent `claimRuns`) in the open write transaction: one
    /// read of the oldest runnable runs for all of them, handed out in call order (each caller up
    /// to its limit, only runs runnable at its own `now`), one UPDATE and one event INSERT for all.
    /// A run read but given to no caller is left as it was.
    func claimRows(_ conn: any SQLConnection, _ ops: [ClaimOperation]) throws -> [[ClaimedRun]] {
        let total = ops.reduce(0) { $0 + $1.limit }
        let latest = ops.map(\.now).max() ?? Date()
        do {
            // Round trip 1 (PostgreSQL): the runnable runs, locked, with their audit chain heads.
            let candidates: [SQLRow]
            if self.dialect == .postgres {
                // Walk the runnable index in order, never read every runnable run and sort them: with
                // stale statistics (a queue that just filled up) the planner would otherwise pick that.
                let reads = [
                    SQLStatement("SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)", []),
                    SQLStatement(Self.claimCandidatesSQL, [.time(latest), .int(total)]),
                    // What follows in this transaction (the claim's UPDATE by id) keeps to the primary key:
                    // the same stale statistics would otherwise make a hash join over every run look cheap.
                    SQLStatement("SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true)", []),
                ]
                candidates = try conn.pipeline(reads, commit: false)[1]
            } else {
                // Queued runs by age and expired leases by expiry, each from its own index (schema
                // v3), so a claim never walks past the runs other runners hold; the oldest of both win.
                let queued = try conn.query("""
                    SELECT \(Self.runColumns), event_seq, last_hash FROM runs
                    WHERE status = 'queued' AND (not_before IS NULL OR not_before <= $1) ORDER BY created_at LIMIT $2
                    """, [.time(latest), .int(total)])
                let expired = try conn.query("""
                    SELECT \(Self.runColumns), event_seq, last_hash FROM runs
                    WHERE status = 'running' AND lease_expires_at < $1 ORDER BY lease_expires_at LIMIT $2
                    """, [.time(latest), .int(total)])
                candidates = expired.isEmpty ? queued
                    : Array((queued + expired).sorted { ($0.int64(15) ?? 0, $0.string(0) ?? "") < ($1.int64(15) ?? 0, $1.string(0) ?? "") }.prefix(total))
            }
            var out = [[ClaimedRun]](repeating: [], count: ops.count)
            if candidates.isEmpty { return out }
            var runs: [(RunRecord, SQLRow)] = []
            for row in candidates { runs.append((try Self.decodeRun(row), row)) }
            var taken = [Bool](repeating: false, count: runs.count)
            var claimed: [ClaimedRun] = []
            var owners: [Int] = []
            var eventRows: [[SQLValue]] = []
            var updateRows: [SQLValue] = []
            var resumable: [String] = []
            var checkpoints: [String: CheckpointRecord] = [:]
            for (o, op) in ops.enumerated() {
                let now = op.now
                let owner = op.owner
                let expires = now.addingTimeInterval(op.leaseSeconds)
                let nowStored = date(millis: millis(now))
                let expiresStored = date(millis: millis(expires))
                let nowMillis = millis(now)
                var count = 0
                for (i, (decoded, row)) in runs.enumerated() where !taken[i] && count < op.limit {
                    var run = decoded
                    // Runnable at this caller's own time (the read used the batch's latest).
                    let runnable = run.status == .queued ? run.notBefore.map { millis($0) <= nowMillis } ?? true
                        : run.leaseExpiresAt.map { millis($0) < nowMillis } ?? false
                    guard runnable else { continue }
                    taken[i] = true
                    count += 1
                    if self.dialect == .postgres, run.checkpointSequence > 0, !row.isNull(Self.runColumnCount + 2) {
                        // PostgreSQL reads a resumed run's latest checkpoint with the run (see `claimCandidatesSQL`).
                        let first = Self.runColumnCount + 2
                        checkpoints[run.id] = try Self.decodeCheckpoint(SQLRow(values: Array(row.values[first..<(first + 7)])))
                    }
                    let head = ChainHead(sequence: row.int(Self.runColumnCount) ?? 0, hash: row.string(Self.runColumnCount + 1) ?? "")
                    var data = ["fence": String(run.claims + 1), "lease_expires_at": String(millis(expires))]
                    var kind = "claimed"
                    if run.status == .running {
                        kind = "lease_expired_reclaimed"
                        data["previous_owner"] = run.leaseOwner ?? ""
                    }
                    let (events, newHead) = Self.chain(runID: run.id, head: head,
                                                       events: [NewEvent(kind: kind, actor: owner, data: data)], at: now)
                    eventRows += events
                    updateRows += [.text(run.id), .int(newHead.sequence), .text(newHead.hash), .text(owner), .time(expires), .time(now)]
                    run.status = .running
                    run.leaseOwner = owner
                    run.leaseExpiresAt = expiresStored
                    run.claims += 1
                    run.startedAt = run.startedAt ?? nowStored
                    run.updatedAt = nowStored
                    if run.checkpointSequence > 0 { resumable.append(run.id) }
                    claimed.append(ClaimedRun(run: run, lease: Lease(runID: run.id, owner: owner, fence: run.claims, expiresAt: expires),
                                              checkpoint: nil, answers: [:], answeredRequests: []))
                    owners.append(o)
                }
            }
            if claimed.isEmpty { return out }
            // Round trip 2: the claims, their events, what resumed runs need, and the COMMIT.
            var statements = [SQLStatement("""
                UPDATE runs SET status = 'running', lease_owner = v.owner, lease_expires_at = v.expires, claims = claims + 1,
                    started_at = COALESCE(started_at, v.at), updated_at = v.at, event_seq = v.seq, last_hash = v.hash
                FROM (\(Self.valuesTable(["id", "seq", "hash", "owner", "expires", "at"], rows: claimed.count,
                                         shape: ["$", "CAST($ AS integer)", "$", "$", "CAST($ AS bigint)", "CAST($ AS bigint)"]))) AS v
                WHERE runs.id = v.id
                """, updateRows)]
            statements += Self.eventStatements(eventRows)
            let readsAt = statements.count
            if !resumable.isEmpty && self.dialect == .postgres {
                // One statement text for any number of runs (one plan per connection), each run's
                // answered requests looked up by key (the checkpoints came with the runs).
                statements.append(SQLStatement(Self.resumeRequestsSQL, [self.listParam(resumable)]))
            } else if !resumable.isEmpty {
                let list = Self.placeholders(resumable.count, from: 1)
                let ids = resumable.map { SQLValue.text($0) }
                let cpColumns = Self.qualifiedCheckpointColumns
                let latest = claimed.filter { $0.run.checkpointSequence > 0 }
                let pairs = latest.indices.map { "($\($0 * 2 + 1), CAST($\($0 * 2 + 2) AS integer))" }.joined(separator: ",")
                statements.append(SQLStatement("""
                    SELECT \(cpColumns) FROM checkpoints c
                    JOIN (SELECT column1 AS run_id, column2 AS seq FROM (VALUES \(pairs)) AS t) AS v ON c.run_id = v.run_id AND c.seq = v.seq
                    """, latest.flatMap { [SQLValue.text($0.run.id), .int($0.run.checkpointSequence)] }))
                statements.append(SQLStatement("""
                    SELECT \(Self.requestColumns) FROM requests
                    WHERE run_id IN (\(list)) AND status = 'answered' AND delivered_at IS NULL ORDER BY answered_at, id
                    """, ids))
            }
            let results = try conn.pipeline(statements, commit: true)
            if !resumable.isEmpty {
                var requestsAt = readsAt
                if self.dialect == .sqlite {
                    for row in results[readsAt] {
                        let cp = try Self.decodeCheckpoint(row)
                        checkpoints[cp.runID] = cp
                    }
                    requestsAt += 1
                }
                var answered: [String: [RequestRecord]] = [:]
                for row in results[requestsAt] {
                    let request = try Self.decodeRequest(row)
                    answered[request.runID, default: []].append(request)
                }
                for i in claimed.indices {
                    let id = claimed[i].run.id
                    claimed[i].checkpoint = checkpoints[id]
                    let requests = answered[id] ?? []
                    claimed[i].answeredRequests = requests
                    for r in requests { claimed[i].answers[r.id] = r.response ?? Data("null".utf8) }
                }
            }
            for (c, o) in zip(claimed, owners) { out[o].append(c) }
            return out
        }
    }

    /// PostgreSQL: the oldest runnable runs (`$1` now, at most `$2`), locked, each with its audit chain head and
    /// its latest checkpoint (NULLs for a fresh run), read by key along the walk of the runnable
    /// index: a resumed run needs no second lookup. Only the run rows are locked.
    static let claimCandidatesSQL = """
            SELECT \(runColumns("r")), r.event_seq, r.last_hash, c.* FROM runs r
            LEFT JOIN LATERAL (SELECT \(checkpointColumns) FROM checkpoints
                               WHERE run_id = r.id AND seq = r.checkpoint_seq AND r.checkpoint_seq > 0 OFFSET 0) AS c ON true
            WHERE r.runnable AND r.status IN ('queued', 'running')
              AND ((r.status = 'queued' AND (r.not_before IS NULL OR r.not_before <= $1))
                   OR (r.status = 'running' AND r.lease_expires_at < $1))
            ORDER BY r.created_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED
            """

    /// PostgreSQL: the answered, undelivered requests of resumed runs (`$1` run ids), oldest first.
    static let resumeRequestsSQL = """
        SELECT q.* FROM unnest($1::text[]) AS k(run_id)
        CROSS JOIN LATERAL (SELECT \(requestColumns) FROM requests
                            WHERE run_id = k.run_id AND status = 'answered' AND delivered_at IS NULL OFFSET 0) AS q
        ORDER BY q.answered_at, q.id
        """

    func heartbeat(_ lease: Lease, until: Date) async throws -> Lease {
        try await pool.write { conn in
            // With its COMMIT in one round trip on PostgreSQL; a lost lease matched no row, so nothing was written.
            let rows = try conn.pipeline([SQLStatement("UPDATE runs SET lease_expires_at = $4 WHERE \(Self.fence) RETURNING claims",
                                                       Self.fenceParams(lease) + [.time(until)])], commit: true)[0]
            guard !rows.isEmpty else { throw Self.leaseLost(lease) }
            var renewed = lease
            renewed.expiresAt = until
            return renewed
        }
    }

    private static func markDelivered(_ conn: any SQLConnection, runID: String, requestIDs: [String], now: Date) throws {
        guard !requestIDs.isEmpty else { return }
        try conn.query("""
            UPDATE requests SET delivered_at = $2
            WHERE run_id = $1 AND status = 'answered' AND delivered_at IS NULL AND id IN (\(placeholders(requestIDs.count, from: 3)))
            """, [.text(runID), .time(now)] + requestIDs.map { .text($0) })
    }

    /// The SQL for a bytes parameter in `INSERT … SELECT` (PostgreSQL cannot infer its type there).
    func blobParameter(_ n: Int) -> String { dialect == .postgres ? "CAST($\(n) AS bytea)" : "$\(n)" }

    func saveCheckpoint(_ lease: Lease, checkpoint: NewCheckpoint, delivered: [String], now: Date) async throws -> CheckpointRecord {
        try await checkpointBatcher.submit(CheckpointOperation(lease: lease, checkpoint: checkpoint, delivered: delivered, now: now))
    }

    func consumeAnswers(_ lease: Lease, requestIDs: [String], now: Date) async throws {
        try await pool.write { conn in
            guard try !conn.query("SELECT id FROM runs WHERE \(Self.fence)", Self.fenceParams(lease)).isEmpty else {
                throw Self.leaseLost(lease)
            }
            try Self.markDelivered(conn, runID: lease.runID, requestIDs: requestIDs, now: now)
        }
    }

    func pause(_ lease: Lease, checkpoint: NewCheckpoint?, requests: [NewRequest], mail: [NewMail],
               delivered: [String], now: Date) async throws -> PauseResult {
        try await pauseBatcher.submit(PauseOperation(lease: lease, checkpoint: checkpoint, requests: requests, mail: mail,
                                                     delivered: delivered, now: now))
    }

    static func insertTokens(_ conn: any SQLConnection, requestID: String, runID: String, tokens: [NewToken], now: Date) throws {
        for statement in tokenStatements(runID: runID, tokens: tokens.map { (requestID, $0) }, now: now) {
            try conn.query(statement)
        }
    }

    static let insertTokensPrefix = "INSERT INTO request_tokens (token_hash, request_id, run_id, reviewer, state, expires_at, message_id, issued_at)"

    /// INSERTs for tokens, each with the request it answers.
    static func tokenStatements(runID: String, tokens: [(String, NewToken)], now: Date) -> [SQLStatement] {
        insertStatements(insertTokensPrefix, columns: 8, rows: tokens.map { requestID, token in
            [.text(token.tokenHash), .text(requestID), .text(runID), .text(token.reviewer), .text("active"),
             .time(token.expiresAt), .optional(token.messageID), .time(now)]
        })
    }

    static func insertMail(_ conn: any SQLConnection, _ mail: [NewMail], now: Date) throws {
        guard !mail.isEmpty else { return }
        conn.notifyWork()
        for statement in mailStatements(mail, now: now) { try conn.query(statement) }
    }

    static let insertMailPrefix = "INSERT INTO outbox (message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, created_at)"

    /// The row of `insertMailPrefix` for one mail.
    static func mailRow(_ m: NewMail, now: Date) -> [SQLValue] {
        [.text(m.messageID), .text(m.kind.rawValue), .text(m.recipient), .optional(m.sender), .blob(m.raw),
         .optional(m.requestID), .optional(m.runID), .text("pending"), .int(0), .time(m.notBefore ?? now), .time(now)]
    }

    /// INSERTs for outbox mail (the caller marks the transaction with `notifyWork`).
    static func mailStatements(_ mail: [NewMail], now: Date) -> [SQLStatement] {
        insertStatements(insertMailPrefix, columns: 11, rows: mail.map { mailRow($0, now: now) },
                         suffix: " ON CONFLICT (message_id) DO NOTHING", chunk: 200)
    }

    func finish(_ completion: RunCompletion, now: Date) async throws {
        guard completion.status.isTerminal else {
            throw StoreError(.invalidState, "cannot finish run \(completion.lease.runID) as \(completion.status.rawValue): use succeeded, rejected, failed, cancelled or expired")
        }
        try await finishBatcher.submit(FinishOperation(completion: completion, now: now))
    }

    func finishMany(_ completions: [RunCompletion], now: Date) async throws -> [String] {
        guard !completions.isEmpty else { return [] }
        for c in completions where !c.status.isTerminal {
            throw StoreError(.invalidState, "cannot finish run \(c.lease.runID) as \(c.status.rawValue): use succeeded, rejected, failed, cancelled or expired")
        }
        let ops = completions.map { FinishOperation(completion: $0, now: now) }
        return try await pool.write { conn in try self.finishRows(conn, ops) }
    }

    /// Ends the runs of `ops` in the open write transaction (each at its own time) and returns the
    /// ids of those whose lease was lost (nothing written for them).
    func finishRows(_ conn: any SQLConnection, _ ops: [FinishOperation]) throws -> [String] {
        let completions = ops.map(\.completion)
        let chunks = stride(from: 0, to: ops.count, by: 300).map { Array(ops[$0..<min($0 + 300, ops.count)]) }
        do {
            // Round trip 1 (PostgreSQL): the runs (locked) with their chain heads, and which have open requests.
            var reads: [SQLStatement] = []
            for chunk in chunks {
                let list = Self.placeholders(chunk.count, from: 1)
                let ids = chunk.map { SQLValue.text($0.completion.lease.runID) }
                reads.append(SQLStatement("SELECT id, lease_owner, claims, status, event_seq, last_hash FROM runs WHERE id IN (\(list))" + self.forUpdate, ids))
                // `COALESCE(status, '')`: by the run_id index, never by the partial index of every
                // pending request (which the planner picks when statistics say it is small).
                reads.append(SQLStatement("SELECT DISTINCT run_id FROM requests WHERE run_id IN (\(list)) AND COALESCE(status, '') = 'pending'", ids))
            }
            let found = try conn.pipeline(reads, commit: false)
            var heads: [String: ChainHead] = [:]
            var withOpenRequests: [String] = []
            for (i, chunk) in chunks.enumerated() {
                let byID = Dictionary(chunk.map { ($0.completion.lease.runID, $0.completion.lease) }, uniquingKeysWith: { first, _ in first })
                for row in found[2 * i] {
                    let id = try row.requiredString(0)
                    guard let lease = byID[id], row.string(1) == lease.owner, row.int(2) == lease.fence,
                          row.string(3) == RunStatus.running.rawValue else { continue }
                    heads[id] = ChainHead(sequence: try row.requiredInt(4), hash: row.string(5) ?? "")
                }
                withOpenRequests += found[2 * i + 1].compactMap { $0.string(0) }
            }
            // Round trip 2: the runs ended, their events, requests closed, mail, and the COMMIT.
            var writes: [SQLStatement] = []
            var eventRows: [[SQLValue]] = []
            var mail: [(NewMail, Date)] = []
            var seen = Set<String>()
            for chunk in chunks {
                var values: [String] = []
                var params: [SQLValue] = []
                for op in chunk {
                    let c = op.completion
                    let now = op.now
                    guard let head = heads[c.lease.runID], seen.insert(c.lease.runID).inserted else { continue }
                    var data = ["status": c.status.rawValue]
                    if let error = c.error { data["error"] = String(error.prefix(500)) }
                    let (rows, newHead) = Self.chain(runID: c.lease.runID, head: head,
                                                     events: [NewEvent(kind: "finished", actor: c.lease.owner, data: data)], at: now)
                    eventRows += rows
                    mail += c.mail.map { ($0, now) }
                    let b = params.count + 1
                    values.append("($\(b), $\(b + 1), $\(b + 2), $\(b + 3), CAST($\(b + 4) AS integer), $\(b + 5), CAST($\(b + 6) AS bigint))")
                    params += [.text(c.lease.runID), .text(c.status.rawValue), Self.json(c.output), .optional(c.error),
                               .int(newHead.sequence), .text(newHead.hash), .time(now)]
                }
                if values.isEmpty { continue }
                writes.append(SQLStatement("""
                    UPDATE runs SET status = v.status, output = v.output, error = v.error, lease_owner = NULL,
                        lease_expires_at = NULL, finished_at = v.at, updated_at = v.at, event_seq = v.seq, last_hash = v.hash
                    FROM (SELECT column1 AS id, column2 AS status, column3 AS output, column4 AS error, column5 AS seq,
                                 column6 AS hash, column7 AS at FROM (VALUES \(values.joined(separator: ","))) AS t) AS v
                    WHERE runs.id = v.id
                    """, params))
            }
            writes += Self.eventStatements(eventRows)
            let closing = withOpenRequests.filter { heads[$0] != nil }
            for start in stride(from: 0, to: closing.count, by: 400) {
                writes += Self.closeRequestStatements(runIDs: Array(closing[start..<min(start + 400, closing.count)]), status: .cancelled)
            }
            writes += Self.insertStatements(Self.insertMailPrefix, columns: 11, rows: mail.map { Self.mailRow($0.0, now: $0.1) },
                                            suffix: " ON CONFLICT (message_id) DO NOTHING", chunk: 200)
            if !mail.isEmpty { conn.notifyWork() }
            _ = try conn.pipeline(writes, commit: true)
            return completions.map(\.lease.runID).filter { heads[$0] == nil }
        }
    }

    func release(_ lease: Lease, now: Date) async throws {
        try await pool.write { conn in
            let rows = try conn.query("""
                UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
                WHERE \(Self.fence) RETURNING event_seq, last_hash
                """, Self.fenceParams(lease) + [.time(now)])
            guard let row = rows.first else { throw Self.leaseLost(lease) }
            conn.notifyWork()
            try self.appendEvents(conn, runID: lease.runID, events: [NewEvent(kind: "released", actor: lease.owner, data: [:])],
                                  now: now, head: ChainHead(sequence: try row.requiredInt(0), hash: row.string(1) ?? ""))
        }
    }
}

/// One `pause` call waiting for its batch.
struct PauseOperation: Sendable {
    var lease: Lease
    var checkpoint: NewCheckpoint?
    var requests: [NewRequest]
    var mail: [NewMail]
    var delivered: [String]
    var now: Date
}

/// One `claimRuns` call waiting for its batch.
struct ClaimOperation: Sendable {
    var owner: String
    var limit: Int
    var leaseSeconds: Double
    var now: Date
}

/// One `finish` call waiting for its batch.
struct FinishOperation: Sendable {
    var completion: RunCompletion
    var now: Date
}

/// One `saveCheckpoint` call waiting for its batch.
struct CheckpointOperation: Sendable {
    var lease: Lease
    var checkpoint: NewCheckpoint
    var delivered: [String]
    var now: Date
}

/// Set-based pauses and checkpoint saves: the concurrent calls of many runners (or of one runner's
/// many runs) that the coalescers gather run as one write transaction of a few multi-row statements.
extension SQLRunStore {
    /// Runs `ops` in write transactions of a few set-based statements each. Operations on the same
    /// run go into successive transactions, in order. When a batch fails as a whole (a constraint, a
    /// deadlock), its operations are retried one by one, so one bad operation fails only its caller.
    func executeBatches<Op: Sendable, Out: Sendable>(
        _ ops: [Op], runID: (Op) -> String,
        _ body: @escaping @Sendable (SQLRunStore, any SQLConnection, [Op]) throws -> [Result<Out, any Error>]
    ) async throws -> [Result<Out, any Error>] {
        var rounds: [[Int]] = []
        var roundRuns: [Set<String>] = []
        for (i, op) in ops.enumerated() {
            let id = runID(op)
            if let r = roundRuns.firstIndex(where: { !$0.contains(id) }) {
                rounds[r].append(i); roundRuns[r].insert(id)
            } else {
                rounds.append([i]); roundRuns.append([id])
            }
        }
        var results = [Result<Out, any Error>?](repeating: nil, count: ops.count)
        for round in rounds {
            let batch = round.map { ops[$0] }
            do {
                let out = try await pool.write { conn in try body(self, conn, batch) }
                for (i, r) in zip(round, out) { results[i] = r }
            } catch let error as StoreError where batch.count > 1 && error.code == .queryFailed {
                for i in round {
                    let single = ops[i]
                    do {
                        results[i] = try await pool.write { conn in try body(self, conn, [single]) }[0]
                    } catch {
                        results[i] = .failure(error)
                    }
                }
            }
        }
        return results.map { $0! }
    }

    /// `($a, $b, …), (…)` rows for a `VALUES` list: `shape` gives each column's SQL around its
    /// placeholder (`"$"` for a plain one, `"CAST($ AS integer)"` …).
    static func valuesList(rows: Int, shape: [String], from first: Int = 1) -> String {
        let parts = shape.map { column -> (Substring, Substring) in
            guard let dollar = column.firstIndex(of: "$") else { return (Substring(column), "") }
            return (column[..<dollar], column[column.index(after: dollar)...])
        }
        var out = ""
        out.reserveCapacity(rows * shape.count * 8)
        var n = first
        for r in 0..<rows {
            if r > 0 { out += "," }
            out += "("
            for (c, (before, after)) in parts.enumerated() {
                if c > 0 { out += ", " }
                out += before
                out += "$"
                out += String(n)
                out += after
                n += 1
            }
            out += ")"
        }
        return out
    }

    /// `SELECT column1 AS a, column2 AS b … FROM (VALUES …) AS t`: a parameter table both backends read.
    static func valuesTable(_ names: [String], rows: Int, shape: [String], from first: Int = 1) -> String {
        let key = ValuesShape(names: names, rows: rows, shape: shape, first: first)
        if let sql = valuesSQLCache.withLock({ $0[key] }) { return sql }
        let columns = names.enumerated().map { "column\($0.offset + 1) AS \($0.element)" }.joined(separator: ", ")
        let sql = "SELECT \(columns) FROM (VALUES \(valuesList(rows: rows, shape: shape, from: first))) AS t"
        valuesSQLCache.withLock { cache in
            if cache.count > 512 { cache.removeAll() }
            cache[key] = sql
        }
        return sql
    }

    struct ValuesShape: Hashable, Sendable {
        var names: [String]
        var rows: Int
        var shape: [String]
        var first: Int
    }

    /// The text of each parameter table, built once per shape (like `insertSQL`).
    static let valuesSQLCache = Mutex<[ValuesShape: String]>([:])

    // MARK: Pause

    /// The pauses of several runs (distinct) in the open write transaction; one result per operation.
    func pauseRows(_ conn: any SQLConnection, _ ops: [PauseOperation]) throws -> [Result<PauseResult, any Error>] {
        // Round trip 1 (PostgreSQL): the runs (rows locked, in id order) and which of the requests are
        // already known (re-emitted by a restored checkpoint).
        var reads = [SQLStatement("""
            SELECT id, lease_owner, claims, status, checkpoint_seq, event_seq, last_hash FROM runs
            WHERE id IN (\(Self.placeholders(ops.count, from: 1))) ORDER BY id\(forUpdate)
            """, ops.map { .text($0.lease.runID) })]
        let requestIDs = ops.flatMap { $0.requests.map(\.id) }
        if !requestIDs.isEmpty {
            reads.append(SQLStatement("SELECT id, run_id FROM requests WHERE id IN (\(Self.placeholders(requestIDs.count, from: 1)))",
                                      requestIDs.map { .text($0) }))
        }
        let found = try conn.pipeline(reads, commit: false)
        var runRows: [String: SQLRow] = [:]
        for row in found[0] { runRows[try row.requiredString(0)] = row }
        var known: [String: String] = [:]
        if !requestIDs.isEmpty {
            for row in found[1] { known[try row.requiredString(0)] = try row.requiredString(1) }
        }

        struct Plan {
            var index: Int
            var op: PauseOperation
            var row: SQLRow
            var created: [String] = []
            var newRequests: [NewRequest] = []
            var status = "waiting"
        }
        var results = [Result<PauseResult, any Error>?](repeating: nil, count: ops.count)
        var plans: [Plan] = []
        for (i, op) in ops.enumerated() {
            let lease = op.lease
            guard let row = runRows[lease.runID], row.string(1) == lease.owner, row.int(2) == lease.fence,
                  row.string(3) == RunStatus.running.rawValue else {
                results[i] = .failure(Self.leaseLost(lease))
                continue
            }
            var plan = Plan(index: i, op: op, row: row)
            var claimed = known
            var conflict: StoreError?
            for r in op.requests {
                if let owner = claimed[r.id] {
                    if owner != lease.runID {
                        conflict = StoreError(.invalidState, "request id \(r.id) is already used by run \(owner); request ids must be unique across runs (the engine's default ids are)")
                        break
                    }
                    continue
                }
                claimed[r.id] = lease.runID
                plan.created.append(r.id)
                plan.newRequests.append(r)
            }
            if let conflict {
                results[i] = .failure(conflict)
                continue
            }
            known = claimed
            plans.append(plan)
        }

        // A run whose requests were all decided already (re-emitted after a restore) goes straight back to the queue.
        let checking = plans.indices.filter { plans[$0].op.requests.isEmpty || plans[$0].created.count < plans[$0].op.requests.count }
        if !checking.isEmpty {
            let open = try conn.query("""
                SELECT run_id, id, status FROM requests
                WHERE run_id IN (\(Self.placeholders(checking.count, from: 1)))
                  AND (status = 'pending' OR (status = 'answered' AND delivered_at IS NULL))
                """, checking.map { .text(plans[$0].op.lease.runID) })
            var byRun: [String: [(String, String)]] = [:]
            for row in open { byRun[try row.requiredString(0), default: []].append((row.string(1) ?? "", row.string(2) ?? "")) }
            for p in checking {
                let deliveredNow = Set(plans[p].op.delivered)
                var pending = plans[p].created.count
                var undelivered = 0
                for (id, status) in byRun[plans[p].op.lease.runID] ?? [] {
                    if status == "pending" { pending += 1 } else if !deliveredNow.contains(id) { undelivered += 1 }
                }
                if pending == 0 && undelivered > 0 { plans[p].status = "queued" }
            }
        }

        // Round trip 2: every write, with the COMMIT, a few multi-row statements for the whole batch.
        var deletes: [SQLValue] = []
        var checkpointRows: [[SQLValue]] = []
        var runValues: [SQLValue] = []
        var deliveredValues: [SQLValue] = []
        var requestRows: [[SQLValue]] = []
        var tokenRows: [[SQLValue]] = []
        var mailRows: [[SQLValue]] = []
        var eventRows: [[SQLValue]] = []
        var notify = false
        for plan in plans {
            let op = plan.op
            let runID = op.lease.runID
            let now = op.now
            let sequence = op.checkpoint == nil ? nil : try plan.row.requiredInt(4) + 1
            // The usual pause raises one request: its details go into the `paused` event itself (one
            // audit row, not two). Several requests get a `request` event each, before `paused`.
            var events: [NewEvent] = []
            var pausedData = ["requests": plan.created.joined(separator: ","), "status": plan.status]
            if plan.newRequests.count == 1 {
                pausedData.merge(Self.requestEventData(plan.newRequests[0])) { current, _ in current }
            } else {
                events = plan.newRequests.map { NewEvent(kind: "request", actor: op.lease.owner, data: Self.requestEventData($0)) }
            }
            if let sequence { pausedData["checkpoint_seq"] = String(sequence) }
            events.append(NewEvent(kind: "paused", actor: op.lease.owner, data: pausedData))
            let head = ChainHead(sequence: try plan.row.requiredInt(5), hash: plan.row.string(6) ?? "")
            let (rows, newHead) = Self.chain(runID: runID, head: head, events: events, at: now)
            eventRows += rows
            if let checkpoint = op.checkpoint, let sequence {
                if let id = checkpoint.id { deletes += [.text(runID), .text(id)] }
                checkpointRows.append([.text(runID), .int(sequence), .text(checkpoint.id ?? "\(runID):\(sequence)"),
                                       .int(checkpoint.superstep), .optional(checkpoint.parentID), .blob(checkpoint.data), .time(now)])
            }
            runValues += [.text(runID), .text(plan.status), .time(now), .int(newHead.sequence), .text(newHead.hash), .optional(sequence)]
            for id in op.delivered { deliveredValues += [.text(runID), .text(id), .time(now)] }
            for r in plan.newRequests {
                requestRows.append([.text(r.id), .text(runID), .text(r.executorID), .optional(r.stepID), .text(r.requestType),
                                    Self.json(r.requestData), .text(r.responseType), .text("pending"), .text(Self.jsonArray(r.reviewers)),
                                    .text(r.quorum.description), .text(r.rejectOn.rawValue), .time(r.dueAt), .time(r.remindAt),
                                    Self.json(r.policy), .time(now)])
                for token in r.tokens {
                    tokenRows.append([.text(token.tokenHash), .text(r.id), .text(runID), .text(token.reviewer), .text("active"),
                                      .time(token.expiresAt), .optional(token.messageID), .time(now)])
                }
            }
            let createdSet = Set(plan.created)
            for m in op.mail where m.requestID.map(createdSet.contains) ?? true {
                mailRows.append(Self.mailRow(m, now: now))
            }
            if plan.status == "queued" || !mailRows.isEmpty { notify = true }
            results[plan.index] = .success(PauseResult(createdRequestIDs: plan.created, checkpointSequence: sequence))
        }
        if plans.isEmpty { return results.map { $0! } }
        var writes: [SQLStatement] = []
        if !deletes.isEmpty {
            writes.append(SQLStatement("""
                DELETE FROM checkpoints WHERE (run_id, id) IN (\(Self.valuesTable(["run_id", "id"], rows: deletes.count / 2, shape: ["$", "$"])))
                """, deletes))
        }
        writes += Self.insertStatements("INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at)",
                                        columns: 7, rows: checkpointRows, chunk: 100)
        writes.append(SQLStatement("""
            UPDATE runs SET status = v.status, lease_owner = NULL, lease_expires_at = NULL, updated_at = v.at, event_seq = v.seq,
                last_hash = v.hash, checkpoint_seq = COALESCE(v.cp, checkpoint_seq)
            FROM (\(Self.valuesTable(["id", "status", "at", "seq", "hash", "cp"], rows: plans.count,
                                     shape: ["$", "$", "CAST($ AS bigint)", "CAST($ AS integer)", "$", "CAST($ AS integer)"]))) AS v
            WHERE runs.id = v.id
            """, runValues))
        if !deliveredValues.isEmpty {
            writes.append(SQLStatement("""
                UPDATE requests SET delivered_at = v.at
                FROM (\(Self.valuesTable(["run_id", "id", "at"], rows: deliveredValues.count / 3, shape: ["$", "$", "CAST($ AS bigint)"]))) AS v
                WHERE requests.id = v.id AND requests.run_id = v.run_id AND requests.status = 'answered' AND requests.delivered_at IS NULL
                """, deliveredValues))
        }
        writes += Self.insertStatements("""
            INSERT INTO requests (id, run_id, executor_id, step_id, request_type, request_data, response_type, status,
                reviewers, quorum, reject_on, due_at, remind_at, policy, created_at)
            """, columns: 15, rows: requestRows, chunk: 100)
        writes += Self.insertStatements(Self.insertTokensPrefix, columns: 8, rows: tokenRows)
        writes += Self.insertStatements(Self.insertMailPrefix, columns: 11, rows: mailRows, suffix: " ON CONFLICT (message_id) DO NOTHING", chunk: 200)
        writes += Self.eventStatements(eventRows)
        if notify { conn.notifyWork() }
        _ = try conn.pipeline(writes, commit: true)
        return results.map { $0! }
    }

    /// What the audit trail records about a new request.
    static func requestEventData(_ r: NewRequest) -> [String: String] {
        var data = ["request_id": r.id, "executor_id": r.executorID, "request_type": r.requestType,
                    "response_type": r.responseType, "reviewers": r.reviewers.joined(separator: ","),
                    "quorum": r.quorum.description]
        if let due = r.dueAt { data["due_at"] = String(millis(due)) }
        if let step = r.stepID { data["step_id"] = step }
        return data
    }

    // MARK: Checkpoints

    /// The checkpoint saves of several runs (distinct) in the open write transaction, one result
    /// per operation. Every statement is fenced by each run's lease, so they all go out with the
    /// COMMIT in one round trip on PostgreSQL: a run whose lease is lost gets nothing written.
    func checkpointRows(_ conn: any SQLConnection, _ ops: [CheckpointOperation]) throws -> [Result<CheckpointRecord, any Error>] {
        let fenceJoin = "JOIN runs r ON r.id = v.run_id AND r.lease_owner = v.owner AND r.claims = v.claims AND r.status = 'running'"
        let fenceNames = ["run_id", "owner", "claims"]
        let fenceShape = ["$", "$", "CAST($ AS integer)"]
        var runValues: [SQLValue] = []
        var insertValues: [SQLValue] = []
        var deleteValues: [SQLValue] = []
        var deleteRows = 0
        var deliveredValues: [SQLValue] = []
        var deliveredRows = 0
        for op in ops {
            let fence = Self.fenceParams(op.lease)
            runValues += fence + [.time(op.now)]
            insertValues += fence + [.optional(op.checkpoint.id), .int(op.checkpoint.superstep), .optional(op.checkpoint.parentID),
                                     .blob(op.checkpoint.data), .time(op.now)]
            if let id = op.checkpoint.id {
                deleteValues += fence + [.text(id)]
                deleteRows += 1
            }
            for id in op.delivered {
                deliveredValues += fence + [.text(id), .time(op.now)]
                deliveredRows += 1
            }
        }
        var statements = [SQLStatement("""
            UPDATE runs SET checkpoint_seq = checkpoint_seq + 1, updated_at = v.at
            FROM (\(Self.valuesTable(fenceNames + ["at"], rows: ops.count, shape: fenceShape + ["CAST($ AS bigint)"]))) AS v
            WHERE runs.id = v.run_id AND runs.lease_owner = v.owner AND runs.claims = v.claims AND runs.status = 'running'
            RETURNING runs.id, runs.checkpoint_seq
            """, runValues)]
        if deleteRows > 0 {
            statements.append(SQLStatement("""
                DELETE FROM checkpoints WHERE (run_id, id) IN (
                    SELECT v.run_id, v.id FROM (\(Self.valuesTable(fenceNames + ["id"], rows: deleteRows, shape: fenceShape + ["$"]))) AS v \(fenceJoin))
                """, deleteValues))
        }
        statements.append(SQLStatement("""
            INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at)
            SELECT r.id, r.checkpoint_seq, COALESCE(v.id, r.id || ':' || r.checkpoint_seq), v.superstep, v.parent_id, v.data, v.at
            FROM (\(Self.valuesTable(fenceNames + ["id", "superstep", "parent_id", "data", "at"], rows: ops.count,
                                     shape: fenceShape + ["CAST($ AS text)", "CAST($ AS integer)", "CAST($ AS text)",
                                                          dialect == .postgres ? "CAST($ AS bytea)" : "$", "CAST($ AS bigint)"]))) AS v
            \(fenceJoin)
            """, insertValues))
        if deliveredRows > 0 {
            statements.append(SQLStatement("""
                UPDATE requests SET delivered_at = v.at
                FROM (\(Self.valuesTable(fenceNames + ["id", "at"], rows: deliveredRows, shape: fenceShape + ["$", "CAST($ AS bigint)"]))) AS v
                \(fenceJoin)
                WHERE requests.id = v.id AND requests.run_id = v.run_id AND requests.status = 'answered' AND requests.delivered_at IS NULL
                """, deliveredValues))
        }
        let results = try conn.pipeline(statements, commit: true)
        var sequences: [String: Int] = [:]
        for row in results[0] { sequences[try row.requiredString(0)] = try row.requiredInt(1) }
        return ops.map { op in
            guard let sequence = sequences[op.lease.runID] else { return .failure(Self.leaseLost(op.lease)) }
            let c = op.checkpoint
            return .success(CheckpointRecord(id: c.id ?? "\(op.lease.runID):\(sequence)", runID: op.lease.runID, sequence: sequence,
                                             superstep: c.superstep, parentID: c.parentID, data: c.data,
                                             createdAt: date(millis: millis(op.now))))
        }
    }
}
