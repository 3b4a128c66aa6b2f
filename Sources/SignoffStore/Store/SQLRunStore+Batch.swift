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
}
