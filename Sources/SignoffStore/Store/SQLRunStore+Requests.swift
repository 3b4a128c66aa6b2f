import Foundation

/// Human requests: lookups, answers and votes, timers, tokens.
extension SQLRunStore {
    func request(id: String) async throws -> RequestRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE id = $1", .text(id)).first.map { try Self.decodeRequest($0) }
        }
    }

    func pendingRequests() async throws -> [RequestRecord] {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE status = 'pending' ORDER BY created_at, id").map { try Self.decodeRequest($0) }
        }
    }

    func requests(runID: String) async throws -> [RequestRecord] {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE run_id = $1 ORDER BY created_at, id", .text(runID)).map { try Self.decodeRequest($0) }
        }
    }

    func votes(requestID: String) async throws -> [VoteRecord] {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.voteColumns) FROM votes WHERE request_id = $1 ORDER BY answered_at, reviewer", .text(requestID)).map { try Self.decodeVote($0) }
        }
    }

    func tokenLookup(tokenHash: String) async throws -> TokenRecord? {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.tokenColumns) FROM request_tokens WHERE token_hash = $1", .text(tokenHash)).first.map { try Self.decodeToken($0) }
        }
    }

    func tokens(requestID: String) async throws -> [TokenRecord] {
        try await pool.read { conn in
            try conn.query("SELECT \(Self.tokenColumns) FROM request_tokens WHERE request_id = $1 ORDER BY issued_at, reviewer", .text(requestID)).map { try Self.decodeToken($0) }
        }
    }

    /// Whether the votes so far decide the request, and how.
    static func decision(for request: RequestRecord, votes: [VoteRecord], latest: Answer) -> Verdict? {
        if latest.decisive || latest.verdict == .value { return latest.verdict }
        let needed = request.quorum.approvalsNeeded(reviewers: request.reviewers.count)
        let approvals = votes.filter { $0.verdict == .approve }.count
        let rejections = votes.filter { $0.verdict == .reject }.count
        if rejections > 0 && request.rejectOn == .any { return .reject }
        if approvals >= needed { return .approve }
        if request.rejectOn == .quorum && rejections >= needed { return .reject }
        // Approval can no longer be reached: the rejections decide.
        if rejections > 0 && request.reviewers.count > 0 && request.reviewers.count - rejections < needed { return .reject }
        return nil
    }

    // `answer(_:)` and `answerMany(_:)`: SQLRunStore+Answers.swift.

    func dueRequests(now: Date, limit: Int) async throws -> [RequestRecord] {
        try await pool.read { conn in
            try conn.query("""
                SELECT \(Self.requestColumns) FROM requests
                WHERE status = 'pending' AND ((due_at IS NOT NULL AND due_at <= $1) OR (remind_at IS NOT NULL AND remind_at <= $1))
                ORDER BY COALESCE(due_at, remind_at), id LIMIT $2
                """, .time(now), .int(limit)).map { try Self.decodeRequest($0) }
        }
    }

    func recordReminder(requestID: String, expectedRemindersSent: Int, nextRemindAt: Date?, mail: [NewMail], now: Date) async throws -> Bool {
        try await pool.write { conn in
            let rows = try conn.query("""
                UPDATE requests SET reminders_sent = reminders_sent + 1, remind_at = $3
                WHERE id = $1 AND status = 'pending' AND reminders_sent = $2 RETURNING run_id, reminders_sent
                """, .text(requestID), .int(expectedRemindersSent), .time(nextRemindAt))
            guard let row = rows.first else { return false }
            try Self.insertMail(conn, mail, now: now)
            try self.appendEvents(conn, runID: try row.requiredString(0), events: [
                NewEvent(kind: "reminder", actor: "system", data: ["request_id": requestID, "round": String(row.int(1) ?? 0),
                                                                   "recipients": mail.map(\.recipient).joined(separator: ",")]),
            ], now: now)
            return true
        }
    }

    func issueTokens(requestID: String, tokens: [NewToken], revoking: [String], newDueAt: Date?, mail: [NewMail],
                     actor: String?, now: Date) async throws {
        try await pool.write { conn in
            guard let row = try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE id = $1" + self.forUpdate, .text(requestID)).first else {
                throw StoreError(.notFound, "no request \(requestID)")
            }
            let request = try Self.decodeRequest(row)
            guard request.status == .pending else {
                throw StoreError(.alreadyDecided, "request \(requestID) is already \(request.status.rawValue); no new tokens were issued")
            }
            if !revoking.isEmpty {
                try conn.query("""
                    UPDATE request_tokens SET state = 'revoked'
                    WHERE request_id = $1 AND state = 'active' AND lower(reviewer) IN (\(Self.placeholders(revoking.count, from: 2)))
                    """, [.text(requestID)] + revoking.map { .text($0.lowercased()) })
            }
            try Self.insertTokens(conn, requestID: requestID, runID: request.runID, tokens: tokens, now: now)
            var reviewers = request.reviewers
            for t in tokens where !reviewers.contains(where: { $0.lowercased() == t.reviewer.lowercased() }) { reviewers.append(t.reviewer) }
            try conn.query("UPDATE requests SET reviewers = $2, due_at = COALESCE($3, due_at) WHERE id = $1",
                           .text(requestID), .text(Self.jsonArray(reviewers)), .time(newDueAt))
            try Self.insertMail(conn, mail, now: now)
            try self.appendEvents(conn, runID: request.runID, events: [
                NewEvent(kind: "tokens_issued", actor: actor, data: ["request_id": requestID,
                                                                     "to": tokens.map(\.reviewer).joined(separator: ","),
                                                                     "revoked": revoking.joined(separator: ",")]),
            ], now: now)
        }
    }

    func expireRequest(requestID: String, actor: String?, reason: String?, now: Date) async throws -> RequestRecord {
        try await pool.write { conn in
            let rows = try conn.query("""
                UPDATE requests SET status = 'expired', answered_by = $2, answered_at = $3, decision = 'expired'
                WHERE id = $1 AND status = 'pending' RETURNING \(Self.requestColumns)
                """, .text(requestID), .optional(actor), .time(now))
            guard let row = rows.first else {
                if try conn.query("SELECT id FROM requests WHERE id = $1", .text(requestID)).isEmpty {
                    throw StoreError(.notFound, "no request \(requestID)")
                }
                throw StoreError(.alreadyDecided, "request \(requestID) is no longer pending; it was not expired")
            }
            let request = try Self.decodeRequest(row)
            try conn.query("UPDATE request_tokens SET state = 'revoked' WHERE request_id = $1 AND state = 'active'", .text(requestID))
            try Self.closeRequests(conn, runIDs: [request.runID], status: .cancelled, now: now)
            try conn.query("""
                UPDATE runs SET status = 'expired', error = $2, finished_at = $3, updated_at = $3, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = $1 AND status IN ('waiting', 'queued')
                """, .text(request.runID), .text(reason ?? "request \(requestID) expired"), .time(now))
            var data = ["request_id": requestID]
            if let reason { data["reason"] = reason }
            try self.appendEvents(conn, runID: request.runID, events: [NewEvent(kind: "expired", actor: actor, data: data)], now: now)
            return request
        }
    }

    // MARK: Inbound

    static func inboundStatement(_ r: InboundRecord) -> SQLStatement {
        SQLStatement("""
            INSERT INTO inbound (dedupe_key, path, sender, outcome, reason, request_id, received_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING
            """, [.text(r.dedupeKey), .optional(r.path), .optional(r.sender), .text(r.outcome.rawValue),
                  .optional(r.reason.map { String($0.prefix(4000)) }), .optional(r.requestID), .time(r.receivedAt)])
    }

    static func insertInbound(_ conn: any SQLConnection, _ r: InboundRecord) throws {
        let statement = inboundStatement(r)
        try conn.query(statement)
    }

    func recordInbound(_ record: InboundRecord) async throws -> Bool {
        try await pool.write { conn in
            !(try conn.query("""
                INSERT INTO inbound (dedupe_key, path, sender, outcome, reason, request_id, received_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key
                """, .text(record.dedupeKey), .optional(record.path), .optional(record.sender), .text(record.outcome.rawValue),
                .optional(record.reason.map { String($0.prefix(4000)) }), .optional(record.requestID), .time(record.receivedAt)).isEmpty)
        }
    }

    func inboundSeen(dedupeKey: String) async throws -> InboundOutcome? {
        try await pool.read { conn in
            try conn.query("SELECT outcome FROM inbound WHERE dedupe_key = $1", .text(dedupeKey)).first?.string(0).map(InboundOutcome.init(rawValue:))
        }
    }
}
