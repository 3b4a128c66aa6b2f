import Foundation

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
        let expires = now.addingTimeInterval(leaseSeconds)
        let skipLocked = dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await pool.write { conn in
            // Round trip 1 (PostgreSQL): the runnable runs, locked, with their audit chain heads.
            var reads: [SQLStatement] = []
            if self.dialect == .postgres {
                // Walk the runnable index in order, never read every runnable run and sort them: with
                // stale statistics (a queue that just filled up) the planner would otherwise pick that.
                reads.append(SQLStatement("SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)", []))
            }
            reads.append(SQLStatement("""
                SELECT \(Self.runColumns), event_seq, last_hash FROM runs
                WHERE status IN ('queued', 'running')
                  AND ((status = 'queued' AND (not_before IS NULL OR not_before <= $1))
                       OR (status = 'running' AND lease_expires_at < $1))
                ORDER BY created_at LIMIT \(limit)\(skipLocked)
                """, [.time(now)]))
            if self.dialect == .postgres {
                reads.append(SQLStatement("SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true)", []))
            }
            let candidates = try conn.pipeline(reads, commit: false)[self.dialect == .postgres ? 1 : 0]
            if candidates.isEmpty { return [] }
            let nowStored = date(millis: millis(now))
            let expiresStored = date(millis: millis(expires))
            var claimed: [ClaimedRun] = []
            var eventRows: [[SQLValue]] = []
            var values: [String] = []
            var params: [SQLValue] = [.text(owner), .time(expires), .time(now)]
            var resumable: [String] = []
            for row in candidates {
                var run = try Self.decodeRun(row)
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
                let b = params.count + 1
                values.append("($\(b), CAST($\(b + 1) AS integer), $\(b + 2))")
                params += [.text(run.id), .int(newHead.sequence), .text(newHead.hash)]
                run.status = .running
                run.leaseOwner = owner
                run.leaseExpiresAt = expiresStored
                run.claims += 1
                run.startedAt = run.startedAt ?? nowStored
                run.updatedAt = nowStored
                if run.checkpointSequence > 0 { resumable.append(run.id) }
                claimed.append(ClaimedRun(run: run, lease: Lease(runID: run.id, owner: owner, fence: run.claims, expiresAt: expires),
                                          checkpoint: nil, answers: [:], answeredRequests: []))
            }
            // Round trip 2: the claims, their events, what resumed runs need, and the COMMIT.
            var statements = [SQLStatement("""
                UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = $2, claims = claims + 1,
                    started_at = COALESCE(started_at, $3), updated_at = $3, event_seq = v.seq, last_hash = v.hash
                FROM (SELECT column1 AS id, column2 AS seq, column3 AS hash FROM (VALUES \(values.joined(separator: ","))) AS t) AS v
                WHERE runs.id = v.id
                """, params)]
            statements += Self.eventStatements(eventRows)
            let readsAt = statements.count
            if !resumable.isEmpty {
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
                var checkpoints: [String: CheckpointRecord] = [:]
                for row in results[readsAt] {
                    let cp = try Self.decodeCheckpoint(row)
                    checkpoints[cp.runID] = cp
                }
                var answered: [String: [RequestRecord]] = [:]
                for row in results[readsAt + 1] {
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
            return claimed
        }
    }

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
        let fenced = "EXISTS (SELECT 1 FROM runs WHERE \(Self.fence))"
        let data = blobParameter(7)
        return try await pool.write { conn in
            // Every statement is guarded by the fence, so they all go out with the COMMIT in one round
            // trip on PostgreSQL: when the lease is lost, none of them writes anything.
            var statements = [SQLStatement("UPDATE runs SET checkpoint_seq = checkpoint_seq + 1, updated_at = $4 WHERE \(Self.fence) RETURNING checkpoint_seq",
                                           Self.fenceParams(lease) + [.time(now)])]
            if let id = checkpoint.id {
                statements.append(SQLStatement("DELETE FROM checkpoints WHERE run_id = $1 AND id = $4 AND \(fenced)",
                                               Self.fenceParams(lease) + [.text(id)]))
            }
            statements.append(SQLStatement("""
                INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at)
                SELECT id, checkpoint_seq, COALESCE(CAST($4 AS text), id || ':' || checkpoint_seq), CAST($5 AS integer),
                       CAST($6 AS text), \(data), CAST($8 AS bigint)
                FROM runs WHERE \(Self.fence)
                """, Self.fenceParams(lease) + [.optional(checkpoint.id), .int(checkpoint.superstep), .optional(checkpoint.parentID),
                                                .blob(checkpoint.data), .time(now)]))
            if !delivered.isEmpty {
                statements.append(SQLStatement("""
                    UPDATE requests SET delivered_at = $4
                    WHERE run_id = $1 AND status = 'answered' AND delivered_at IS NULL
                      AND id IN (\(Self.placeholders(delivered.count, from: 5))) AND \(fenced)
                    """, Self.fenceParams(lease) + [.time(now)] + delivered.map { .text($0) }))
            }
            let results = try conn.pipeline(statements, commit: true)
            guard let row = results[0].first else { throw Self.leaseLost(lease) }
            let sequence = try row.requiredInt(0)
            return CheckpointRecord(id: checkpoint.id ?? "\(lease.runID):\(sequence)", runID: lease.runID, sequence: sequence,
                                    superstep: checkpoint.superstep, parentID: checkpoint.parentID, data: checkpoint.data,
                                    createdAt: date(millis: millis(now)))
        }
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
        try await pool.write { conn in
            // Round trip 1 (PostgreSQL): the run under the fence (row locked) and which of these requests
            // are already known (re-emitted by a restored checkpoint; only then are its open requests read).
            var reads = [SQLStatement("SELECT checkpoint_seq, event_seq, last_hash FROM runs WHERE \(Self.fence)" + self.forUpdate,
                                      Self.fenceParams(lease))]
            if !requests.isEmpty {
                reads.append(SQLStatement("SELECT id, run_id FROM requests WHERE id IN (\(Self.placeholders(requests.count, from: 1)))",
                                          requests.map { .text($0.id) }))
            }
            let found = try conn.pipeline(reads, commit: false)
            guard let runRow = found[0].first else { throw Self.leaseLost(lease) }
            let head = ChainHead(sequence: try runRow.requiredInt(1), hash: runRow.string(2) ?? "")
            var known: [String: String] = [:]
            if !requests.isEmpty {
                for row in found[1] { known[try row.requiredString(0)] = try row.requiredString(1) }
            }
            var created: [String] = []
            var newRequests: [NewRequest] = []
            var events: [NewEvent] = []
            for r in requests {
                if let owner = known[r.id] {
                    if owner != lease.runID {
                        throw StoreError(.invalidState, "request id \(r.id) is already used by run \(owner); request ids must be unique across runs (the engine's default ids are)")
                    }
                    continue
                }
                known[r.id] = lease.runID
                created.append(r.id)
                newRequests.append(r)
                var data = ["request_id": r.id, "executor_id": r.executorID, "request_type": r.requestType,
                            "response_type": r.responseType, "reviewers": r.reviewers.joined(separator: ","),
                            "quorum": r.quorum.description]
                if let due = r.dueAt { data["due_at"] = String(millis(due)) }
                if let step = r.stepID { data["step_id"] = step }
                events.append(NewEvent(kind: "request", actor: lease.owner, data: data))
            }
            // A run whose requests were all decided already (re-emitted after a restore) goes straight back to the queue.
            var nextStatus = "waiting"
            if requests.isEmpty || created.count < requests.count {
                let deliveredNow = Set(delivered)
                var pending = created.count
                var undelivered = 0
                let open = try conn.query("""
                    SELECT id, status FROM requests
                    WHERE run_id = $1 AND (status = 'pending' OR (status = 'answered' AND delivered_at IS NULL))
                    """, .text(lease.runID))
                for row in open {
                    if row.string(1) == "pending" { pending += 1 } else if !deliveredNow.contains(row.string(0) ?? "") { undelivered += 1 }
                }
                if pending == 0 && undelivered > 0 { nextStatus = "queued" }
            }
            let sequence = checkpoint == nil ? nil : try runRow.requiredInt(0) + 1
            var pausedData = ["requests": created.joined(separator: ","), "status": nextStatus]
            if let sequence { pausedData["checkpoint_seq"] = String(sequence) }
            events.append(NewEvent(kind: "paused", actor: lease.owner, data: pausedData))
            let (eventRows, newHead) = Self.chain(runID: lease.runID, head: head, events: events, at: now)

            // Round trip 2: every write, with the COMMIT.
            var writes: [SQLStatement] = []
            if let checkpoint, let sequence {
                if let id = checkpoint.id {
                    writes.append(SQLStatement("DELETE FROM checkpoints WHERE run_id = $1 AND id = $2", [.text(lease.runID), .text(id)]))
                }
                writes.append(SQLStatement("""
                    INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                    """, [.text(lease.runID), .int(sequence), .text(checkpoint.id ?? "\(lease.runID):\(sequence)"), .int(checkpoint.superstep),
                          .optional(checkpoint.parentID), .blob(checkpoint.data), .time(now)]))
            }
            writes.append(SQLStatement("""
                UPDATE runs SET status = $2, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3, event_seq = $4, last_hash = $5,
                    checkpoint_seq = COALESCE(CAST($6 AS integer), checkpoint_seq)
                WHERE id = $1
                """, [.text(lease.runID), .text(nextStatus), .time(now), .int(newHead.sequence), .text(newHead.hash), .optional(sequence)]))
            if !delivered.isEmpty {
                writes.append(SQLStatement("""
                    UPDATE requests SET delivered_at = $2
                    WHERE run_id = $1 AND status = 'answered' AND delivered_at IS NULL AND id IN (\(Self.placeholders(delivered.count, from: 3)))
                    """, [.text(lease.runID), .time(now)] + delivered.map { .text($0) }))
            }
            writes += Self.insertStatements("""
                INSERT INTO requests (id, run_id, executor_id, step_id, request_type, request_data, response_type, status,
                    reviewers, quorum, reject_on, due_at, remind_at, policy, created_at)
                """, columns: 15, rows: newRequests.map { r in
                    [.text(r.id), .text(lease.runID), .text(r.executorID), .optional(r.stepID), .text(r.requestType),
                     Self.json(r.requestData), .text(r.responseType), .text("pending"), .text(Self.jsonArray(r.reviewers)),
                     .text(r.quorum.description), .text(r.rejectOn.rawValue), .time(r.dueAt), .time(r.remindAt), Self.json(r.policy), .time(now)]
                }, chunk: 100)
            writes += Self.tokenStatements(runID: lease.runID, tokens: newRequests.flatMap { r in r.tokens.map { (r.id, $0) } }, now: now)
            let createdSet = Set(created)
            let newMail = mail.filter { $0.requestID.map(createdSet.contains) ?? true }
            writes += Self.mailStatements(newMail, now: now)
            writes += Self.eventStatements(eventRows)
            if nextStatus == "queued" || !newMail.isEmpty { conn.notifyWork() }
            _ = try conn.pipeline(writes, commit: true)
            return PauseResult(createdRequestIDs: created, checkpointSequence: sequence)
        }
    }

    static func insertTokens(_ conn: any SQLConnection, requestID: String, runID: String, tokens: [NewToken], now: Date) throws {
        for statement in tokenStatements(runID: runID, tokens: tokens.map { (requestID, $0) }, now: now) {
            try conn.query(statement.sql, statement.params)
        }
    }

    /// INSERTs for tokens, each with the request it answers.
    static func tokenStatements(runID: String, tokens: [(String, NewToken)], now: Date) -> [SQLStatement] {
        insertStatements("INSERT INTO request_tokens (token_hash, request_id, run_id, reviewer, state, expires_at, message_id, issued_at)",
                         columns: 8, rows: tokens.map { requestID, token in
                             [.text(token.tokenHash), .text(requestID), .text(runID), .text(token.reviewer), .text("active"),
                              .time(token.expiresAt), .optional(token.messageID), .time(now)]
                         })
    }

    static func insertMail(_ conn: any SQLConnection, _ mail: [NewMail], now: Date) throws {
        guard !mail.isEmpty else { return }
        conn.notifyWork()
        for statement in mailStatements(mail, now: now) { try conn.query(statement.sql, statement.params) }
    }

    /// INSERTs for outbox mail (the caller marks the transaction with `notifyWork`).
    static func mailStatements(_ mail: [NewMail], now: Date) -> [SQLStatement] {
        insertStatements("INSERT INTO outbox (message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, created_at)",
                         columns: 11, rows: mail.map {
                             [.text($0.messageID), .text($0.kind.rawValue), .text($0.recipient), .optional($0.sender), .blob($0.raw),
                              .optional($0.requestID), .optional($0.runID), .text("pending"), .int(0), .time($0.notBefore ?? now), .time(now)]
                         }, suffix: " ON CONFLICT (message_id) DO NOTHING", chunk: 200)
    }

    func finish(_ completion: RunCompletion, now: Date) async throws {
        let lost = try await finishMany([completion], now: now)
        if !lost.isEmpty { throw Self.leaseLost(completion.lease) }
    }

    func finishMany(_ completions: [RunCompletion], now: Date) async throws -> [String] {
        guard !completions.isEmpty else { return [] }
        for c in completions where !c.status.isTerminal {
            throw StoreError(.invalidState, "cannot finish run \(c.lease.runID) as \(c.status.rawValue): use succeeded, rejected, failed, cancelled or expired")
        }
        let chunks = stride(from: 0, to: completions.count, by: 300).map { Array(completions[$0..<min($0 + 300, completions.count)]) }
        return try await pool.write { conn in
            // Round trip 1 (PostgreSQL): the runs (locked) with their chain heads, and which have open requests.
            var reads: [SQLStatement] = []
            for chunk in chunks {
                let list = Self.placeholders(chunk.count, from: 1)
                let ids = chunk.map { SQLValue.text($0.lease.runID) }
                reads.append(SQLStatement("SELECT id, lease_owner, claims, status, event_seq, last_hash FROM runs WHERE id IN (\(list))" + self.forUpdate, ids))
                reads.append(SQLStatement("SELECT DISTINCT run_id FROM requests WHERE status = 'pending' AND run_id IN (\(list))", ids))
            }
            let found = try conn.pipeline(reads, commit: false)
            var heads: [String: ChainHead] = [:]
            var withOpenRequests: [String] = []
            for (i, chunk) in chunks.enumerated() {
                let byID = Dictionary(chunk.map { ($0.lease.runID, $0.lease) }, uniquingKeysWith: { first, _ in first })
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
            var mail: [NewMail] = []
            var seen = Set<String>()
            for chunk in chunks {
                var values: [String] = []
                var params: [SQLValue] = [.time(now)]
                for c in chunk {
                    guard let head = heads[c.lease.runID], seen.insert(c.lease.runID).inserted else { continue }
                    var data = ["status": c.status.rawValue]
                    if let error = c.error { data["error"] = String(error.prefix(500)) }
                    let (rows, newHead) = Self.chain(runID: c.lease.runID, head: head,
                                                     events: [NewEvent(kind: "finished", actor: c.lease.owner, data: data)], at: now)
                    eventRows += rows
                    mail += c.mail
                    let b = params.count + 1
                    values.append("($\(b), $\(b + 1), $\(b + 2), $\(b + 3), CAST($\(b + 4) AS integer), $\(b + 5))")
                    params += [.text(c.lease.runID), .text(c.status.rawValue), Self.json(c.output), .optional(c.error),
                               .int(newHead.sequence), .text(newHead.hash)]
                }
                if values.isEmpty { continue }
                writes.append(SQLStatement("""
                    UPDATE runs SET status = v.status, output = v.output, error = v.error, lease_owner = NULL,
                        lease_expires_at = NULL, finished_at = $1, updated_at = $1, event_seq = v.seq, last_hash = v.hash
                    FROM (SELECT column1 AS id, column2 AS status, column3 AS output, column4 AS error, column5 AS seq,
                                 column6 AS hash FROM (VALUES \(values.joined(separator: ","))) AS t) AS v
                    WHERE runs.id = v.id
                    """, params))
            }
            writes += Self.eventStatements(eventRows)
            let closing = withOpenRequests.filter { heads[$0] != nil }
            for start in stride(from: 0, to: closing.count, by: 400) {
                writes += Self.closeRequestStatements(runIDs: Array(closing[start..<min(start + 400, closing.count)]), status: .cancelled)
            }
            writes += Self.mailStatements(mail, now: now)
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
