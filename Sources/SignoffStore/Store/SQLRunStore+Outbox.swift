import Foundation

/// The transactional mail outbox.
extension SQLRunStore {
    /// How long `dueMail` holds rows it handed out, so a second sender does not send them too.
    static let mailClaimSeconds: Double = 300

    func enqueueMail(_ mail: [NewMail], now: Date) async throws {
        try await pool.write { conn in try Self.insertMail(conn, mail, now: now) }
    }

    /// Due mail, oldest first. The rows are held for five minutes (their next attempt moves forward),
    /// so concurrent senders on other hosts skip them; `markSent` / `markAttemptFailed` / `markWithdrawn` settle them.
    func dueMail(now: Date, limit: Int) async throws -> [OutboxMail] {
        let skipLocked = dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await pool.write { conn in
            let ids = try conn.query("""
                SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1
                ORDER BY next_attempt_at, id LIMIT $2\(skipLocked)
                """, .time(now), .int(limit)).map { $0[0] }
            if ids.isEmpty { return [] }
            let rows = try conn.query("""
                UPDATE outbox SET next_attempt_at = $1 WHERE id IN (\(Self.placeholders(ids.count, from: 2)))
                RETURNING \(Self.outboxColumns)
                """, [.time(now.addingTimeInterval(Self.mailClaimSeconds))] + ids)
            return try rows.map { try Self.decodeMail($0) }.sorted { $0.id < $1.id }
        }
    }

    func markSent(id: Int64, at: Date) async throws {
        try await pool.write { conn in
            let rows = try conn.query("UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1 RETURNING id",
                                      .int(id), .time(at))
            guard !rows.isEmpty else { throw StoreError(.notFound, "no outbox mail \(id)") }
        }
    }

    func markAttemptFailed(id: Int64, error: String, permanent: Bool, nextAttempt: Date?, now: Date) async throws {
        try await pool.write { conn in
            let rows = try conn.query("""
                UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4 WHERE id = $1 RETURNING id
                """, .int(id), .text(permanent ? "failed" : "pending"), .text(String(error.prefix(2000))),
                .time(nextAttempt ?? now))
            guard !rows.isEmpty else { throw StoreError(.notFound, "no outbox mail \(id)") }
        }
    }

    @discardableResult
    func markWithdrawn(id: Int64, reason: String, now: Date) async throws -> Bool {
        try await pool.write { conn in
            let rows = try conn.query("""
                UPDATE outbox SET status = 'withdrawn', last_error = $2, next_attempt_at = $3 WHERE id = $1 AND status = 'pending' RETURNING id
                """, .int(id), .text(String(reason.prefix(2000))), .time(now))
            if !rows.isEmpty { return true }
            guard try !conn.query("SELECT id FROM outbox WHERE id = $1", .int(id)).isEmpty else {
                throw StoreError(.notFound, "no outbox mail \(id)")
            }
            return false
        }
    }

    func mail(messageID: String) async throws -> OutboxMail? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.outboxColumns) FROM outbox WHERE message_id = $1", .text(messageID)).first.map { try Self.decodeMail($0) }
        }
    }
}

/// Checkpoint reads.
extension SQLRunStore {
    func latestCheckpoint(runID: String) async throws -> CheckpointRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.checkpointColumns) FROM checkpoints WHERE run_id = $1 ORDER BY seq DESC LIMIT 1",
                           .text(runID)).first.map { try Self.decodeCheckpoint($0) }
        }
    }

    func checkpoint(runID: String, id: String) async throws -> CheckpointRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.checkpointColumns) FROM checkpoints WHERE run_id = $1 AND id = $2",
                           .text(runID), .text(id)).first.map { try Self.decodeCheckpoint($0) }
        }
    }

    func checkpoint(id: String) async throws -> CheckpointRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.checkpointColumns) FROM checkpoints WHERE id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1",
                           .text(id)).first.map { try Self.decodeCheckpoint($0) }
        }
    }

    func putCheckpoint(runID: String, checkpoint: NewCheckpoint, now: Date) async throws -> CheckpointRecord {
        try await pool.write { conn in
            let rows = try conn.query("UPDATE runs SET checkpoint_seq = checkpoint_seq + 1, updated_at = $2 WHERE id = $1 RETURNING checkpoint_seq",
                                      .text(runID), .time(now))
            guard let row = rows.first else { throw StoreError(.notFound, "no run \(runID) to hold checkpoint \(checkpoint.id ?? "")") }
            return try Self.writeCheckpointRow(conn, runID: runID, sequence: try row.requiredInt(0), checkpoint: checkpoint, now: now)
        }
    }

    /// Inserts checkpoint row `sequence`, replacing an older one with the same id.
    static func writeCheckpointRow(_ conn: any SQLConnection, runID: String, sequence: Int, checkpoint: NewCheckpoint,
                                   now: Date) throws -> CheckpointRecord {
        let id = checkpoint.id ?? "\(runID):\(sequence)"
        if checkpoint.id != nil {
            try conn.query("DELETE FROM checkpoints WHERE run_id = $1 AND id = $2", .text(runID), .text(id))
        }
        try conn.query("INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       .text(runID), .int(sequence), .text(id), .int(checkpoint.superstep), .optional(checkpoint.parentID),
                       .blob(checkpoint.data), .time(now))
        return CheckpointRecord(id: id, runID: runID, sequence: sequence, superstep: checkpoint.superstep,
                                parentID: checkpoint.parentID, data: checkpoint.data, createdAt: now)
    }

    func checkpoints(runID: String, withData: Bool) async throws -> [CheckpointRecord] {
        let columns = withData ? Self.checkpointColumns : Self.checkpointColumns.replacingOccurrences(of: "data,", with: "NULL AS data,")
        return try await pool.read { conn in
            try conn.query("SELECT \(columns) FROM checkpoints WHERE run_id = $1 ORDER BY seq", .text(runID)).map { try Self.decodeCheckpoint($0) }
        }
    }

    func deleteCheckpoint(runID: String, id: String) async throws {
        try await pool.write { conn in
            guard let row = try conn.query("""
                SELECT c.seq, r.checkpoint_seq, r.status FROM checkpoints c JOIN runs r ON r.id = c.run_id
                WHERE c.run_id = $1 AND c.id = $2
                """, .text(runID), .text(id)).first else {
                throw StoreError(.notFound, "run \(runID) has no checkpoint \(id)")
            }
            let status = RunStatus(rawValue: row.string(2) ?? "") ?? .failed
            if row.int(0) == row.int(1) && !status.isTerminal {
                throw StoreError(.invalidState, "checkpoint \(id) is the latest of run \(runID), which is \(status.rawValue); it is needed to resume the run")
            }
            try conn.query("DELETE FROM checkpoints WHERE run_id = $1 AND id = $2", .text(runID), .text(id))
        }
    }
}

/// The hash-chained audit trail.
extension SQLRunStore {
    func appendEvent(runID: String, kind: String, actor: String?, data: [String: String], now: Date) async throws {
        try await pool.write { conn in
            try self.appendEvents(conn, runID: runID, events: [NewEvent(kind: kind, actor: actor, data: data)], now: now)
        }
    }

    func events(runID: String) async throws -> [EventRecord] {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.eventColumns) FROM events WHERE run_id = $1 ORDER BY seq", .text(runID)).map { try Self.decodeEvent($0) }
        }
    }

    func verifyAudit(runID: String) async throws -> AuditReport {
        let (events, head) = try await pool.read { conn -> ([EventRecord], ChainHead?) in
            let events = try conn.query("SELECT \(Self.eventColumns) FROM events WHERE run_id = $1 ORDER BY seq", .text(runID)).map { try Self.decodeEvent($0) }
            let head = try conn.query("SELECT event_seq, last_hash FROM runs WHERE id = $1", .text(runID)).first.map {
                ChainHead(sequence: $0.int(0) ?? 0, hash: $0.string(1) ?? "")
            }
            return (events, head)
        }
        var previous = ""
        for (i, e) in events.enumerated() {
            let expectedSeq = i + 1
            if e.sequence != expectedSeq {
                return AuditReport(runID: runID, eventCount: events.count, firstBrokenSequence: expectedSeq,
                                   problem: "event \(expectedSeq) is missing (found \(e.sequence) in its place)")
            }
            if e.prevHash != previous {
                return AuditReport(runID: runID, eventCount: events.count, firstBrokenSequence: e.sequence,
                                   problem: "event \(e.sequence) does not link to the hash of event \(e.sequence - 1)")
            }
            let content = EventRecord.canonicalContent(runID: e.runID, sequence: e.sequence, kind: e.kind, actor: e.actor,
                                                       data: e.data, atMilliseconds: millis(e.at))
            let expected = Self.sha256Hex(previous + "\n" + content)
            if expected != e.hash {
                return AuditReport(runID: runID, eventCount: events.count, firstBrokenSequence: e.sequence,
                                   problem: "event \(e.sequence) (\(e.kind)) was changed after it was written: its content no longer matches its hash")
            }
            previous = e.hash
        }
        if let head, head.sequence != events.count || head.hash != previous {
            return AuditReport(runID: runID, eventCount: events.count, firstBrokenSequence: min(head.sequence, events.count + 1),
                               problem: "the run records \(head.sequence) events but \(events.count) remain: events were deleted from the end")
        }
        return AuditReport(runID: runID, eventCount: events.count, firstBrokenSequence: nil, problem: nil)
    }
}
