import Foundation

/// The import batch: many inbound messages in one write transaction, each write inside its own
/// savepoint so a refused answer leaves the others in place.
extension SQLRunStore {
    func recordInboundBatch(_ writes: [InboundWrite], now: Date) async throws -> [InboundWriteResult] {
        if writes.isEmpty { return [] }
        return try await pool.write { conn in
            var results: [InboundWriteResult] = []
            results.reserveCapacity(writes.count)
            for write in writes {
                results.append(try self.recordInbound(write, on: conn, now: now))
            }
            return results
        }
    }

    func tokenLookups(tokenHashes: [String]) async throws -> [String: TokenMatch] {
        let hashes = Array(Set(tokenHashes))
        if hashes.isEmpty { return [:] }
        return try await pool.read { conn in
            var tokens: [TokenRecord] = []
            for start in stride(from: 0, to: hashes.count, by: 500) {
                let chunk = Array(hashes[start..<min(hashes.count, start + 500)])
                tokens += try conn.query("SELECT \(Self.tokenColumns) FROM request_tokens WHERE token_hash IN (\(Self.placeholders(chunk.count, from: 1)))",
                                         chunk.map { .text($0) }).map { try Self.decodeToken($0) }
            }
            let ids = Array(Set(tokens.map(\.requestID)))
            var requests: [String: RequestRecord] = [:]
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(ids.count, start + 500)])
                for row in try conn.query("SELECT \(Self.requestColumns) FROM requests WHERE id IN (\(Self.placeholders(chunk.count, from: 1)))",
                                          chunk.map { .text($0) }) {
                    let r = try Self.decodeRequest(row)
                    requests[r.id] = r
                }
            }
            var out: [String: TokenMatch] = [:]
            for t in tokens { if let r = requests[t.requestID] { out[t.tokenHash] = TokenMatch(token: t, request: r) } }
            return out
        }
    }

    /// One write of a batch, inside a savepoint of the batch's transaction.
    private func recordInbound(_ write: InboundWrite, on conn: any SQLConnection, now: Date) throws -> InboundWriteResult {
        let key = write.dedupeKey
        if let seen = try Self.inboundOutcome(conn, key) { return .duplicate(seen) }
        try conn.exec("SAVEPOINT signoff_inbound")
        let result: InboundWriteResult
        do {
            switch write.kind {
            case .answer(let answer):
                do {
                    result = .answered(try self.answer(answer, on: conn))
                } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
                    // As `answer` would have left it: nothing of this answer is kept.
                    try conn.exec("ROLLBACK TO SAVEPOINT signoff_inbound")
                    if let seen = try Self.inboundOutcome(conn, key) {
                        result = .duplicate(seen)
                    } else if var row = answer.inbound {
                        row.outcome = .alreadyDecided
                        row.reason = error.message
                        if row.requestID == nil { row.requestID = answer.requestID }
                        result = try Self.insertInboundIfNew(conn, row) ? .refused(error) : .duplicate(try Self.inboundOutcome(conn, key))
                    } else {
                        result = .refused(error)
                    }
                }
            case .record(let row):
                if try Self.insertInboundIfNew(conn, row) {
                    if let bounced = write.bouncedMail {
                        let rows = try conn.query("""
                            UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1 RETURNING id
                            """, .int(bounced.id), .text(String(bounced.error.prefix(2000))), .time(now))
                        guard !rows.isEmpty else { throw StoreError(.notFound, "no outbox mail \(bounced.id)") }
                    }
                    result = .recorded
                } else {
                    result = .duplicate(try Self.inboundOutcome(conn, key))
                }
            }
        } catch let error as StoreError where error.code != .connectionLost {
            try conn.exec("ROLLBACK TO SAVEPOINT signoff_inbound")
            try conn.exec("RELEASE SAVEPOINT signoff_inbound")
            return .failed(error)
        }
        try conn.exec("RELEASE SAVEPOINT signoff_inbound")
        return result
    }

    private static func inboundOutcome(_ conn: any SQLConnection, _ key: String) throws -> InboundOutcome? {
        try conn.query("SELECT outcome FROM inbound WHERE dedupe_key = $1", .text(key)).first?.string(0).map(InboundOutcome.init(rawValue:))
    }

    private static func insertInboundIfNew(_ conn: any SQLConnection, _ r: InboundRecord) throws -> Bool {
        !(try conn.query("""
            INSERT INTO inbound (dedupe_key, path, sender, outcome, reason, request_id, received_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key
            """, .text(r.dedupeKey), .optional(r.path), .optional(r.sender), .text(r.outcome.rawValue),
            .optional(r.reason.map { String($0.prefix(4000)) }), .optional(r.requestID), .time(r.receivedAt)).isEmpty)
    }
}
