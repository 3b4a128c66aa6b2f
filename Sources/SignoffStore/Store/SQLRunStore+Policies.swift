import Foundation

/// Request policies that change who may answer: escalation and delegation.
extension SQLRunStore {
    func reassign(_ change: RequestReassignment) async throws -> RequestRecord {
        try await pool.write { conn in
            guard let row = try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE id = $1" + self.forUpdate,
                                           .text(change.requestID)).first else {
                throw StoreError(.notFound, "no request \(change.requestID); check the id with `signoff pending`")
            }
            let request = try Self.decodeRequest(row)
            guard request.status == .pending else {
                throw StoreError(.alreadyDecided, "request \(request.id) is already \(request.status.rawValue); nobody new was asked")
            }
            var revokedData: [String] = []
            if let hash = change.requiredTokenHash {
                let revoked = try conn.query("""
                    UPDATE request_tokens SET state = 'revoked', used_at = $3
                    WHERE token_hash = $1 AND request_id = $2 AND state = 'active' RETURNING reviewer
                    """, .text(hash), .text(request.id), .time(change.at))
                guard let who = revoked.first?.string(0) else {
                    let state = try conn.query("SELECT state FROM request_tokens WHERE token_hash = $1", .text(hash)).first?.string(0)
                    throw StoreError(state == "used" ? .alreadyVoted : .alreadyDecided,
                                     "the reply token is \(state ?? "unknown") for request \(request.id); nothing was handed on")
                }
                revokedData.append(who)
            }
            if !change.revokingReviewers.isEmpty {
                revokedData += try conn.query("""
                    UPDATE request_tokens SET state = 'revoked'
                    WHERE request_id = $1 AND state = 'active' AND lower(reviewer) IN (\(Self.placeholders(change.revokingReviewers.count, from: 2)))
                    RETURNING reviewer
                    """, [.text(request.id)] + change.revokingReviewers.map { .text($0.lowercased()) }).compactMap { $0.string(0) }
            }
            try Self.insertTokens(conn, requestID: request.id, runID: request.runID, tokens: change.tokens, now: change.at)
            let updated = try conn.query("""
                UPDATE requests SET reviewers = $2, quorum = COALESCE($3, quorum), due_at = COALESCE($4, due_at),
                                    remind_at = COALESCE($5, remind_at), policy = COALESCE($6, policy)
                WHERE id = $1 RETURNING \(Self.requestColumns)
                """, .text(request.id), .text(Self.jsonArray(change.reviewers)), .optional(change.quorum?.description),
                .time(change.dueAt), .time(change.remindAt), Self.json(change.policy))
            try Self.insertMail(conn, change.mail, now: change.at)
            if var inbound = change.inbound {
                if inbound.requestID == nil { inbound.requestID = request.id }
                try Self.insertInbound(conn, inbound)
            }
            var data = change.eventData
            data["request_id"] = request.id
            data["to"] = change.tokens.map(\.reviewer).joined(separator: ",")
            data["revoked"] = Array(Set(revokedData.map { $0.lowercased() })).sorted().joined(separator: ",")
            if let hash = change.requiredTokenHash { data["token_prefix"] = String(hash.prefix(12)) }
            for (i, t) in change.tokens.enumerated() { data["new_token_prefix_\(i + 1)"] = String(t.tokenHash.prefix(12)) }
            try self.appendEvents(conn, runID: request.runID, events: [NewEvent(kind: change.eventKind, actor: change.actor, data: data)],
                                  now: change.at)
            guard let out = updated.first else { throw StoreError(.notFound, "no request \(request.id)") }
            return try Self.decodeRequest(out)
        }
    }
}
