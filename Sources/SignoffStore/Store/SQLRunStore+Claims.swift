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
            let candidates = try conn.query("""
                SELECT id, status, lease_owner FROM runs
                WHERE status IN ('queued', 'running')
                  AND ((status = 'queued' AND (not_before IS NULL OR not_before <= $1))
                       OR (status = 'running' AND lease_expires_at < $1))
                ORDER BY created_at LIMIT $2\(skipLocked)
                """, .time(now), .int(limit))
            if candidates.isEmpty { return [] }
            var previous: [String: (String, String?)] = [:]
            for row in candidates { previous[try row.requiredString(0)] = (try row.requiredString(1), row.string(2)) }
            let ids = candidates.map { $0[0] }
            let rows = try conn.query("""
                UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = $2, claims = claims + 1,
                    started_at = COALESCE(started_at, $3), updated_at = $3
                WHERE id IN (\(Self.placeholders(ids.count, from: 4)))
                RETURNING \(Self.runColumns), event_seq, last_hash
                """, [.text(owner), .time(expires), .time(now)] + ids)
            var claimed: [ClaimedRun] = []
            var eventRows: [[SQLValue]] = []
            var heads: [(String, ChainHead)] = []
            var resumable: [String] = []
            for row in rows {
                let run = try Self.decodeRun(row)
                let head = ChainHead(sequence: row.int(Self.runColumnCount) ?? 0, hash: row.string(Self.runColumnCount + 1) ?? "")
                var data = ["fence": String(run.claims), "lease_expires_at": String(millis(expires))]
                var kind = "claimed"
                if let (status, oldOwner) = previous[run.id], status == "running" {
                    kind = "lease_expired_reclaimed"
                    data["previous_owner"] = oldOwner ?? ""
                }
                let (events, newHead) = Self.chain(runID: run.id, head: head,
                                                   events: [NewEvent(kind: kind, actor: owner, data: data)], at: now)
                eventRows += events
                heads.append((run.id, newHead))
                if run.checkpointSequence > 0 { resumable.append(run.id) }
                claimed.append(ClaimedRun(run: run, lease: Lease(runID: run.id, owner: owner, fence: run.claims, expiresAt: expires),
                                          checkpoint: nil, answers: [:], answeredRequests: []))
            }
            try Self.insertEvents(conn, eventRows)
            try Self.updateHeads(conn, heads)
            if !resumable.isEmpty {
                let list = Self.placeholders(resumable.count, from: 1)
                let params = resumable.map { SQLValue.text($0) }
                var checkpoints: [String: CheckpointRecord] = [:]
                let cpColumns = Self.checkpointColumns.split(separator: ",").map { "c." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
                for row in try conn.query("""
                    SELECT \(cpColumns) FROM checkpoints c JOIN runs r ON r.id = c.run_id AND c.seq = r.checkpoint_seq
                    WHERE r.id IN (\(list))
                    """, params) {
                    let cp = try Self.decodeCheckpoint(row)
                    checkpoints[cp.runID] = cp
                }
                var answered: [String: [RequestRecord]] = [:]
                for row in try conn.query("""
                    SELECT \(Self.requestColumns) FROM requests
                    WHERE run_id IN (\(list)) AND status = 'answered' AND delivered_at IS NULL ORDER BY answered_at, id
                    """, params) {
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
            let rows = try conn.query("UPDATE runs SET lease_expires_at = $4 WHERE \(Self.fence) RETURNING claims",
                                      Self.fenceParams(lease) + [.time(until)])
            guard !rows.isEmpty else { throw Self.leaseLost(lease) }
            var renewed = lease
            renewed.expiresAt = until
            return renewed
        }
    }

    /// Bumps the checkpoint sequence under the fence, inserts the checkpoint, returns it and the chain head.
    private static func insertCheckpoint(_ conn: any SQLConnection, lease: Lease, checkpoint: NewCheckpoint,
                                         status: String, now: Date) throws -> (CheckpointRecord, ChainHead) {
        let rows = try conn.query("""
            UPDATE runs SET checkpoint_seq = checkpoint_seq + 1, status = $4, updated_at = $5
            WHERE \(fence) RETURNING checkpoint_seq, event_seq, last_hash
            """, fenceParams(lease) + [.text(status), .time(now)])
        guard let row = rows.first else { throw leaseLost(lease) }
        let record = try writeCheckpointRow(conn, runID: lease.runID, sequence: try row.requiredInt(0), checkpoint: checkpoint, now: now)
        return (record, ChainHead(sequence: try row.requiredInt(1), hash: row.string(2) ?? ""))
    }

    private static func markDelivered(_ conn: any SQLConnection, runID: String, requestIDs: [String], now: Date) throws {
        guard !requestIDs.isEmpty else { return }
        try conn.query("""
            UPDATE requests SET delivered_at = $2
            WHERE run_id = $1 AND status = 'answered' AND delivered_at IS NULL AND id IN (\(placeholders(requestIDs.count, from: 3)))
            """, [.text(runID), .time(now)] + requestIDs.map { .text($0) })
    }

    func saveCheckpoint(_ lease: Lease, checkpoint: NewCheckpoint, delivered: [String], now: Date) async throws -> CheckpointRecord {
        try await pool.write { conn in
            let (record, _) = try Self.insertCheckpoint(conn, lease: lease, checkpoint: checkpoint, status: "running", now: now)
            try Self.markDelivered(conn, runID: lease.runID, requestIDs: delivered, now: now)
            return record
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
            var head: ChainHead
            var sequence: Int?
            if let checkpoint {
                let (record, h) = try Self.insertCheckpoint(conn, lease: lease, checkpoint: checkpoint, status: "waiting", now: now)
                head = h
                sequence = record.sequence
            } else {
                let rows = try conn.query("UPDATE runs SET status = 'waiting', updated_at = $4 WHERE \(Self.fence) RETURNING event_seq, last_hash",
                                          Self.fenceParams(lease) + [.time(now)])
                guard let row = rows.first else { throw Self.leaseLost(lease) }
                head = ChainHead(sequence: try row.requiredInt(0), hash: row.string(1) ?? "")
            }
            try Self.markDelivered(conn, runID: lease.runID, requestIDs: delivered, now: now)
            var created: [String] = []
            var events: [NewEvent] = []
            for r in requests {
                let inserted = try conn.query("""
                    INSERT INTO requests (id, run_id, executor_id, step_id, request_type, request_data, response_type, status,
                        reviewers, quorum, reject_on, due_at, remind_at, policy, created_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $12, $13, $14)
                    ON CONFLICT (id) DO NOTHING RETURNING id
                    """, .text(r.id), .text(lease.runID), .text(r.executorID), .optional(r.stepID), .text(r.requestType),
                    Self.json(r.requestData), .text(r.responseType), .text(Self.jsonArray(r.reviewers)), .text(r.quorum.description),
                    .text(r.rejectOn.rawValue), .time(r.dueAt), .time(r.remindAt), Self.json(r.policy), .time(now))
                guard !inserted.isEmpty else {
                    let owner = try conn.query("SELECT run_id FROM requests WHERE id = $1", .text(r.id)).first?.string(0)
                    if let owner, owner != lease.runID {
                        throw StoreError(.invalidState, "request id \(r.id) is already used by run \(owner); request ids must be unique across runs (the engine's default ids are)")
                    }
                    continue
                }
                created.append(r.id)
                try Self.insertTokens(conn, requestID: r.id, runID: lease.runID, tokens: r.tokens, now: now)
                var data = ["request_id": r.id, "executor_id": r.executorID, "request_type": r.requestType,
                            "response_type": r.responseType, "reviewers": r.reviewers.joined(separator: ","),
                            "quorum": r.quorum.description]
                if let due = r.dueAt { data["due_at"] = String(millis(due)) }
                if let step = r.stepID { data["step_id"] = step }
                events.append(NewEvent(kind: "request", actor: lease.owner, data: data))
            }
            let createdSet = Set(created)
            try Self.insertMail(conn, mail.filter { $0.requestID.map(createdSet.contains) ?? true }, now: now)
            // A run whose requests were all decided already (re-emitted after a restore) goes straight back to the queue.
            var nextStatus = "waiting"
            if requests.isEmpty || created.count < requests.count {
                let counts = try conn.query("""
                    SELECT count(CASE WHEN status = 'pending' THEN 1 END),
                           count(CASE WHEN status = 'answered' AND delivered_at IS NULL THEN 1 END)
                    FROM requests WHERE run_id = $1
                    """, .text(lease.runID))
                if (counts.first?.int(0) ?? 0) == 0 && (counts.first?.int(1) ?? 0) > 0 { nextStatus = "queued" }
            }
            if nextStatus == "queued" { conn.notifyWork() }
            var pausedData = ["requests": created.joined(separator: ","), "status": nextStatus]
            if let sequence { pausedData["checkpoint_seq"] = String(sequence) }
            events.append(NewEvent(kind: "paused", actor: lease.owner, data: pausedData))
            let (rows, newHead) = Self.chain(runID: lease.runID, head: head, events: events, at: now)
            try Self.insertEvents(conn, rows)
            try conn.query("""
                UPDATE runs SET status = $2, lease_owner = NULL, lease_expires_at = NULL, event_seq = $3, last_hash = $4 WHERE id = $1
                """, .text(lease.runID), .text(nextStatus), .int(newHead.sequence), .text(newHead.hash))
            head = newHead
            return PauseResult(createdRequestIDs: created, checkpointSequence: sequence)
        }
    }

    static func insertTokens(_ conn: any SQLConnection, requestID: String, runID: String, tokens: [NewToken], now: Date) throws {
        guard !tokens.isEmpty else { return }
        try insertMany(conn, "INSERT INTO request_tokens (token_hash, request_id, run_id, reviewer, state, expires_at, message_id, issued_at)",
                       columns: 8, rows: tokens.map {
                           [.text($0.tokenHash), .text(requestID), .text(runID), .text($0.reviewer), .text("active"),
                            .time($0.expiresAt), .optional($0.messageID), .time(now)]
                       })
    }

    static func insertMail(_ conn: any SQLConnection, _ mail: [NewMail], now: Date) throws {
        guard !mail.isEmpty else { return }
        conn.notifyWork()
        try insertMany(conn, "INSERT INTO outbox (message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, created_at)",
                       columns: 11, rows: mail.map {
                           [.text($0.messageID), .text($0.kind.rawValue), .text($0.recipient), .optional($0.sender), .blob($0.raw),
                            .optional($0.requestID), .optional($0.runID), .text("pending"), .int(0), .time($0.notBefore ?? now), .time(now)]
                       }, suffix: " ON CONFLICT (message_id) DO NOTHING")
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
        return try await pool.write { conn in
            var finished: [String: ChainHead] = [:]
            var start = 0
            while start < completions.count {
                let end = min(start + 300, completions.count)
                var values: [String] = []
                var params: [SQLValue] = [.time(now)]
                for (i, c) in completions[start..<end].enumerated() {
                    let b = i * 6 + 2
                    values.append("($\(b), $\(b + 1), CAST($\(b + 2) AS integer), $\(b + 3), $\(b + 4), $\(b + 5))")
                    params += [.text(c.lease.runID), .text(c.lease.owner), .int(c.lease.fence), .text(c.status.rawValue),
                               Self.json(c.output), .optional(c.error)]
                }
                let rows = try conn.query("""
                    UPDATE runs SET status = v.status, output = v.output, error = v.error, lease_owner = NULL,
                        lease_expires_at = NULL, finished_at = $1, updated_at = $1
                    FROM (SELECT column1 AS id, column2 AS owner, column3 AS fence, column4 AS status, column5 AS output,
                                 column6 AS error FROM (VALUES \(values.joined(separator: ","))) AS t) AS v
                    WHERE runs.id = v.id AND runs.lease_owner = v.owner AND runs.claims = v.fence AND runs.status = 'running'
                    RETURNING runs.id, runs.event_seq, runs.last_hash
                    """, params)
                for row in rows {
                    finished[try row.requiredString(0)] = ChainHead(sequence: try row.requiredInt(1), hash: row.string(2) ?? "")
                }
                start = end
            }
            var eventRows: [[SQLValue]] = []
            var heads: [(String, ChainHead)] = []
            var mail: [NewMail] = []
            for c in completions {
                guard let head = finished[c.lease.runID] else { continue }
                var data = ["status": c.status.rawValue]
                if let error = c.error { data["error"] = String(error.prefix(500)) }
                let (rows, newHead) = Self.chain(runID: c.lease.runID, head: head,
                                                 events: [NewEvent(kind: "finished", actor: c.lease.owner, data: data)], at: now)
                eventRows += rows
                heads.append((c.lease.runID, newHead))
                mail += c.mail
            }
            try Self.insertEvents(conn, eventRows)
            try Self.updateHeads(conn, heads)
            let ids = Array(finished.keys)
            var start2 = 0
            while start2 < ids.count {
                let end = min(start2 + 400, ids.count)
                try Self.closeRequests(conn, runIDs: Array(ids[start2..<end]), status: .cancelled, now: now)
                start2 = end
            }
            try Self.insertMail(conn, mail, now: now)
            return completions.map(\.lease.runID).filter { finished[$0] == nil }
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
