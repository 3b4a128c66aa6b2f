import Crypto
import Foundation
import Synchronization

/// Set-based answers: any number of answers (and the import's inbound rows) in one transaction and
/// two round trips, with the results of the same calls made one after the other.
///
/// Round trip 1 reads, one statement each whatever the batch size: the requests with their runs'
/// chain heads (rows locked on PostgreSQL: requests in id order, then runs in id order, so
/// concurrent batches never deadlock on each other), their votes, their tokens, the tokens used, and (import) the inbound keys and bounced
/// mails already known. Every answer is then decided in Swift, in order, against that state as the
/// earlier answers of the batch changed it. Round trip 2 writes, again one statement per table:
/// tokens used, votes, requests decided, tokens revoked, runs (chain heads, queued), inbound rows,
/// events, (import) outbox notices, and the COMMIT. Rows travel as one JSON array parameter per statement, so each
/// statement has one text (prepared once) for every batch size.
extension SQLRunStore {
    // MARK: Entry points

    func answerMany(_ answers: [Answer]) async throws -> [Result<AnswerResult, StoreError>] {
        if answers.isEmpty { return [] }
        let writes = answers.map { InboundWrite(.answer($0)) }
        do {
            return try await pool.write { conn in
                try self.writeAnswers(writes, importing: false, on: conn, commit: true, now: Date()).map(\.answerResult)
            }
        } catch let error as StoreError where answers.count > 1 && Self.isStatementFailure(error) {
            // A statement of the batch failed (not one answer's refusal, which is a result): each
            // answer alone, so only the one that cannot be written fails.
            var results: [Result<AnswerResult, StoreError>] = []
            for write in writes {
                do {
                    let outcome = try await pool.write { conn in
                        try self.writeAnswers([write], importing: false, on: conn, commit: true, now: Date())[0]
                    }
                    results.append(outcome.answerResult)
                } catch let error as StoreError where Self.isStatementFailure(error) {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    func answer(_ answer: Answer) async throws -> AnswerResult {
        try await answerBatcher.submit(answer)
    }

    /// A statement failed (constraint, bad data): retrying the writes one by one can isolate it.
    /// Connection loss, a closed store, a busy database or a full disk fail every write alike.
    static func isStatementFailure(_ error: StoreError) -> Bool {
        ![.connectionLost, .closed, .busy, .connectionFailed, .diskFull].contains(error.code)
    }

    /// The most answers one coalesced batch takes.
    static let answerBatchLimit = 128

    // MARK: The set-based write

    /// What one write of a set-based batch did.
    enum AnswerOutcome: Sendable {
        case answered(AnswerResult)
        case recorded
        case refused(StoreError)
        case duplicate(InboundOutcome?)
        case failed(StoreError)

        var inboundResult: InboundWriteResult {
            switch self {
            case .answered(let r): .answered(r)
            case .recorded: .recorded
            case .refused(let e): .refused(e)
            case .duplicate(let o): .duplicate(o)
            case .failed(let e): .failed(e)
            }
        }

        /// As `answer(_:)` reports it (refusals are errors there).
        var answerResult: Result<AnswerResult, StoreError> {
            switch self {
            case .answered(let r): .success(r)
            case .refused(let e), .failed(let e): .failure(e)
            case .recorded, .duplicate: .failure(StoreError(.invalidState, "the write recorded no answer"))
            }
        }
    }

    /// The run as the batch has changed it so far.
    private struct RunState {
        var head: ChainHead
        var status: String
        /// Set when an answer of the batch queued the run (the time it did).
        var queuedAt: Date?
        var touched = false
    }

    /// Writes `writes` in the open transaction on `conn`, in two round trips.
    ///
    /// `importing`: the semantics of `recordInboundBatch` (a write whose dedupe key is known is a
    /// duplicate; a refused answer records its inbound row as `already_decided`; bounces are marked).
    /// Otherwise those of `answer(_:)` called for each (`.answer` writes only).
    func writeAnswers(_ writes: [InboundWrite], importing: Bool, on conn: any SQLConnection, commit: Bool,
                      now: Date) throws -> [AnswerOutcome] {
        let sql = AnswerSQL.for(dialect)
        var requestIDs = Set<String>()
        var hashes = Set<String>()
        var keys = Set<String>()
        var outboxIDs = Set<Int64>()
        // The write carrying each request as its caller read it: when every answered request has
        // one, their payloads and policies (which never change) are not read again. (The writes
        // are read in place, by index: a copy of a write retains every field it holds.)
        var known: [String: Int] = [:]
        var allKnown = true
        for i in writes.indices {
            switch writes[i].kind {
            case .answer(let a):
                requestIDs.insert(a.requestID)
                if let h = a.tokenHash { hashes.insert(h) }
                if writes[i].request?.id == a.requestID { known[a.requestID] = i } else { allKnown = false }
            case .record:
                if importing, let bounced = writes[i].bouncedMail { outboxIDs.insert(bounced.id) }
            }
            if importing { keys.insert(writes[i].dedupeKey) }
        }

        // Round trip 1: every read.
        var reads: [SQLStatement] = []
        // PostgreSQL locks the requests in the order of the keys: sorted. (SQLite has one writer.)
        let postgres = dialect == .postgres
        // PostgreSQL: two importers may hold copies of one message (the same Message-ID delivered
        // twice). Each takes a transaction lock on its messages' keys first, in one order, so the
        // second reads the keys after the first committed and finds its copy a duplicate, instead
        // of both deciding it and the second writing a notice for a row it then cannot insert.
        let lockingKeys = postgres && importing && !keys.isEmpty
        if lockingKeys { reads.append(SQLStatement(sql.lockInboundKeys, [listParam(Array(keys))])) }
        let firstRead = reads.count
        let ids = postgres ? requestIDs.sorted() : Array(requestIDs)
        // SQLite (no round trips to save): the tokens used are read by hash only when they are not
        // among the requests' own tokens (a foreign or unknown token), after those.
        let hashesInPipeline = postgres && !hashes.isEmpty
        if !ids.isEmpty {
            let list = listParam(ids)
            reads.append(SQLStatement(allKnown ? sql.requestsUnchangingKnown : sql.requests, [list]))
            reads.append(SQLStatement(sql.votes, [list]))
            reads.append(SQLStatement(sql.tokensOfRequests, [list]))
            if hashesInPipeline { reads.append(SQLStatement(sql.tokensByHash, [listParam(Array(hashes))])) }
        }
        let inboundRead = reads.count - firstRead
        if !keys.isEmpty { reads.append(SQLStatement(sql.inboundKeys, [listParam(Array(keys))])) }
        let outboxRead = reads.count - firstRead
        if !outboxIDs.isEmpty { reads.append(SQLStatement(sql.outboxIDs, [intListParam(outboxIDs.sorted())])) }
        let found = reads.isEmpty ? [] : Array(try conn.pipeline(reads, commit: false).dropFirst(firstRead))

        var requests: [String: RequestRecord] = [:]
        var runs: [String: RunState] = [:]
        var votes: [String: [VoteRecord]] = [:]
        var tokens: [String: TokenRecord] = [:]
        var tokensOfRequest: [String: [String]] = [:]
        var seen: [String: InboundOutcome] = [:]
        var knownMail = Set<Int64>()
        if !ids.isEmpty {
            let runColumn = Self.requestColumnCount
            for row in found[0] {
                var request = try Self.decodeRequest(row)
                if allKnown, let i = known[request.id], let data = writes[i].request?.requestData {
                    request.requestData = data
                    request.policy = writes[i].request?.policy
                }
                requests[request.id] = request
                if runs[request.runID] == nil {
                    runs[request.runID] = RunState(head: ChainHead(sequence: try row.requiredInt(runColumn), hash: row.string(runColumn + 1) ?? ""),
                                                   status: try row.requiredString(runColumn + 2))
                }
            }
            for row in found[1] {
                let vote = try Self.decodeVote(row)
                votes[vote.requestID, default: []].append(vote)
            }
            var tokenRows = found[2] + (hashesInPipeline ? found[3] : [])
            if !postgres {
                let own = Set(found[2].compactMap { $0.string(0) })
                let other = hashes.filter { !own.contains($0) }
                if !other.isEmpty { tokenRows += try conn.query(sql.tokensByHash, [listParam(Array(other))]) }
            }
            for row in tokenRows {
                let token = try Self.decodeToken(row)
                if tokens.updateValue(token, forKey: token.tokenHash) == nil {
                    tokensOfRequest[token.requestID, default: []].append(token.tokenHash)
                }
            }
        }
        if !keys.isEmpty {
            for row in found[inboundRead] {
                seen[try row.requiredString(0)] = InboundOutcome(rawValue: try row.requiredString(1))
            }
        }
        if !outboxIDs.isEmpty {
            for row in found[outboxRead] { if let id = row.int64(0) { knownMail.insert(id) } }
        }

        // Every write decided in order; rows for round trip 2 collected on the way.
        var usedTokens: [[SQLValue]] = []
        var voteRows: [[SQLValue]] = []
        var decidedRows: [[SQLValue]] = []
        var revokedRequests: [String] = []
        var inboundRows: [(key: String, row: [SQLValue])] = []
        var eventRows: [[SQLValue]] = []
        var bounces: [SQLStatement] = []
        /// Inbound keys this batch writes (with their outcome): the first write of a key wins.
        var written: [String: InboundOutcome] = [:]

        func addInbound(_ r: InboundRecord) -> Bool {
            if seen[r.dedupeKey] != nil || written[r.dedupeKey] != nil { return false }
            written[r.dedupeKey] = r.outcome
            inboundRows.append((r.dedupeKey, [.text(r.dedupeKey), .optional(r.path), .optional(r.sender), .text(r.outcome.rawValue),
                                              .optional(r.reason.map { String($0.prefix(4000)) }), .optional(r.requestID),
                                              .time(r.receivedAt)]))
            return true
        }

        func decide(_ answer: Answer) throws -> AnswerResult {
            guard var request = requests[answer.requestID], var run = runs[request.runID] else {
                throw StoreError(.notFound, "no request \(answer.requestID); check the id with `signoff pending`")
            }
            guard request.status == .pending else {
                throw StoreError(.alreadyDecided, "request \(request.id) is already \(request.status.rawValue)\(request.answeredBy.map { " (by \($0))" } ?? ""); this answer changed nothing")
            }
            if let hash = answer.tokenHash {
                // Say exactly why a token cannot answer.
                guard let token = tokens[hash] else {
                    throw StoreError(.notFound, "the reply token is unknown; the answer changed nothing")
                }
                guard token.requestID == request.id else {
                    throw StoreError(.invalidState, "the reply token belongs to another request (\(token.requestID)); the answer changed nothing")
                }
                guard token.state == .active else {
                    throw StoreError(token.state == .used ? .alreadyVoted : .alreadyDecided,
                                     "the reply token for \(token.reviewer) is \(token.state.rawValue); the answer changed nothing")
                }
                if let expires = token.expiresAt, millis(expires) < millis(answer.at) {
                    throw StoreError(.invalidState, "the reply token for \(token.reviewer) expired at \(expires); the answer changed nothing")
                }
            }
            let earlier = votes[request.id] ?? []
            guard !earlier.contains(where: { $0.reviewer == answer.reviewer }) else {
                throw StoreError(.alreadyVoted, "\(answer.reviewer) already answered request \(request.id); the second answer changed nothing")
            }
            let at = date(millis: millis(answer.at))
            let thisVote = VoteRecord(requestID: request.id, reviewer: answer.reviewer, verdict: answer.verdict, response: answer.response,
                                      reason: answer.reason, channel: answer.channel, via: answer.via, tokenHash: answer.tokenHash, at: at)
            let allVotes = earlier.isEmpty ? [thisVote] : (earlier + [thisVote]).sorted { ($0.at, $0.reviewer) < ($1.at, $1.reviewer) }
            // Under `any` the first vote always decides, so earlier votes do not matter.
            let counted = request.quorum == .any ? [thisVote] : allVotes
            var voteData = [("request_id", request.id), ("verdict", answer.verdict.rawValue), ("channel", answer.channel.rawValue)]
            if let via = answer.via { voteData.append(("via", via)) }
            if let hash = answer.tokenHash { voteData.append(("token_prefix", String(hash.prefix(12)))) }
            if let reason = answer.reason { voteData.append(("reason", String(reason.prefix(500)))) }
            var events = [ChainEvent(kind: "vote", data: voteData)]

            if let hash = answer.tokenHash {
                tokens[hash]?.state = .used
                tokens[hash]?.usedAt = at
                usedTokens.append([.text(hash), .time(answer.at)])
            }
            voteRows.append([.text(request.id), .text(answer.reviewer), .text(answer.verdict.rawValue), Self.json(answer.response),
                             .optional(answer.reason), .text(answer.channel.rawValue), .optional(answer.via), .optional(answer.tokenHash),
                             .time(answer.at)])
            votes[request.id] = allVotes
            var revoked: [String] = []
            let verdict = Self.decision(for: request, votes: counted, latest: answer)
            if let verdict {
                let via = answer.via ?? answer.channel.rawValue
                decidedRows.append([.text(request.id), Self.json(answer.response), .text(verdict.rawValue), .text(answer.reviewer),
                                    .text(via), .time(answer.at)])
                request.status = .answered
                request.response = answer.response
                request.decision = verdict.rawValue
                request.answeredBy = answer.reviewer
                request.answeredVia = via
                request.answeredAt = at
                let active = (tokensOfRequest[request.id] ?? []).compactMap { tokens[$0] }
                    .filter { $0.requestID == request.id && $0.state == .active && $0.tokenHash != answer.tokenHash }
                    .sorted { ($0.issuedAt, $0.reviewer) < ($1.issuedAt, $1.reviewer) }
                revoked = active.map(\.reviewer)
                if !active.isEmpty {
                    for t in active { tokens[t.tokenHash]?.state = .revoked }
                    revokedRequests.append(request.id)
                }
                let queued = run.status == RunStatus.waiting.rawValue
                var data = [("request_id", request.id), ("decision", verdict.rawValue), ("votes", String(counted.count))]
                if let via = answer.via { data.append(("via", via)) }
                if let hash = answer.tokenHash { data.append(("token_prefix", String(hash.prefix(12)))) }
                // The run's status change (waiting → queued) is recorded in this same event.
                if queued {
                    data.append(("run_status", RunStatus.queued.rawValue))
                    run.status = RunStatus.queued.rawValue
                    run.queuedAt = answer.at
                }
                events.append(ChainEvent(kind: "answered", data: data))
            }
            let (rows, head) = Self.chain(runID: request.runID, head: run.head, actor: answer.reviewer, events: events, at: answer.at)
            eventRows += rows
            run.head = head
            run.touched = true
            runs[request.runID] = run
            requests[request.id] = request
            if var inbound = answer.inbound {
                if inbound.requestID == nil { inbound.requestID = request.id }
                _ = addInbound(inbound)
            }
            return AnswerResult(request: request, decided: verdict != nil, votes: counted, revokedReviewers: revoked)
        }

        var outcomes: [AnswerOutcome] = []
        outcomes.reserveCapacity(writes.count)
        for i in writes.indices {
            let key = writes[i].dedupeKey
            if importing, let known = seen[key] ?? written[key] {
                outcomes.append(.duplicate(known))
                continue
            }
            switch writes[i].kind {
            case .answer(let answer):
                do {
                    outcomes.append(.answered(try decide(answer)))
                } catch let error as StoreError {
                    guard importing else {
                        outcomes.append(.failed(error))
                        continue
                    }
                    if error.code == .alreadyDecided || error.code == .alreadyVoted {
                        // As `answer` would have left it: nothing of this answer is kept, but the
                        // message is logged as already decided.
                        if var row = answer.inbound {
                            row.outcome = .alreadyDecided
                            row.reason = error.message
                            if row.requestID == nil { row.requestID = answer.requestID }
                            outcomes.append(addInbound(row) ? .refused(error) : .duplicate(seen[row.dedupeKey] ?? written[row.dedupeKey]))
                        } else {
                            outcomes.append(.refused(error))
                        }
                    } else {
                        outcomes.append(.failed(error))
                    }
                }
            case .record(let row):
                if let bounced = writes[i].bouncedMail, !knownMail.contains(bounced.id) {
                    outcomes.append(.failed(StoreError(.notFound, "no outbox mail \(bounced.id)")))
                    continue
                }
                guard addInbound(row) else {
                    outcomes.append(.duplicate(seen[row.dedupeKey] ?? written[row.dedupeKey]))
                    continue
                }
                if let bounced = writes[i].bouncedMail {
                    bounces.append(SQLStatement(sql.bounce, [.int(bounced.id), .text(String(bounced.error.prefix(2000))), .time(now)]))
                }
                outcomes.append(.recorded)
            }
        }

        // Round trip 2: every write, with the COMMIT.
        var statements: [SQLStatement] = []
        statements += rowStatements(sql.useTokens, usedTokens)
        statements += rowStatements(sql.insertVotes, voteRows)
        statements += rowStatements(sql.decideRequests, decidedRows)
        if !revokedRequests.isEmpty { statements.append(SQLStatement(sql.revokeTokens, [listParam(revokedRequests)])) }
        var runRows: [[SQLValue]] = []
        var queued = false
        for (id, run) in runs where run.touched {
            runRows.append([.text(id), .int(run.head.sequence), .text(run.head.hash),
                            run.queuedAt == nil ? .null : .text(RunStatus.queued.rawValue), .time(run.queuedAt)])
            if run.queuedAt != nil { queued = true }
        }
        if !runRows.isEmpty {
            // PostgreSQL: in the order of the locks.
            if postgres { runRows.sort { ($0[0].textValue ?? "") < ($1[0].textValue ?? "") } }
            statements += rowStatements(sql.updateRuns, runRows)
        }
        if !inboundRows.isEmpty {
            // PostgreSQL: in key order, so concurrent batches wait for each other's keys in one order.
            if postgres { inboundRows.sort { $0.key < $1.key } }
            statements += rowStatements(sql.insertInbound, inboundRows.map(\.row))
        }
        statements += rowStatements(sql.insertEvents, eventRows)
        statements += bounces
        // The import's notices, chosen by what each write did (`InboundMail`): in this transaction.
        var mail: [NewMail] = []
        if importing {
            for i in writes.indices { mail += writes[i].mail.chosen(for: outcomes[i].inboundResult) }
        }
        if !mail.isEmpty {
            statements += Self.mailStatements(mail, now: now)
            queued = true
        }
        if queued { conn.notifyWork() }
        if !statements.isEmpty || commit {
            _ = try conn.pipeline(statements, commit: commit)
        }
        return outcomes
    }

    /// The statements writing `rows` with `statement`: one on PostgreSQL (the rows as one JSON
    /// parameter); on SQLite, multi-row VALUES of a few fixed sizes (binding is cheaper there than
    /// JSON, and the few sizes keep the cached statements few).
    func rowStatements(_ statement: RowStatement, _ rows: [[SQLValue]]) -> [SQLStatement] {
        if rows.isEmpty { return [] }
        switch dialect {
        case .postgres:
            // A few rows: one plain statement each (a key lookup the planner always gets right;
            // the statements share the round trip). More: one statement for all.
            if rows.count <= RowStatement.postgresRowByRow {
                return rows.map { SQLStatement(statement.postgresSingle, $0) }
            }
            return [SQLStatement(statement.postgres, [rowsParam(rows)])]
        case .sqlite:
            if let each = statement.sqliteEach { return rows.indices.map { SQLStatement(each, rows: rows[$0...$0]) } }
            var out: [SQLStatement] = []
            var start = 0
            while start < rows.count {
                let left = rows.count - start
                let size = RowStatement.sqliteSizes.first { $0 <= left }!
                out.append(SQLStatement(statement.sqlite(rows: size), rows: rows[start..<start + size]))
                start += size
            }
            return out
        }
    }

    // MARK: Parameters

    /// A list of strings as one parameter: a `text[]` literal (PostgreSQL) or a JSON array (SQLite).
    func listParam(_ values: [String]) -> SQLValue {
        switch dialect {
        case .postgres:
            var out = JSONText(capacity: values.count * 24)
            out.bytes[0] = UInt8(ascii: "{")
            for (i, v) in values.enumerated() {
                if i > 0 { out.bytes.append(UInt8(ascii: ",")) }
                out.arrayElement(v)
            }
            out.bytes.append(UInt8(ascii: "}"))
            return .text(String(decoding: out.bytes, as: UTF8.self))
        case .sqlite:
            var out = JSONText(capacity: values.count * 24)
            for (i, v) in values.enumerated() {
                if i > 0 { out.bytes.append(UInt8(ascii: ",")) }
                out.string(v)
            }
            out.bytes.append(UInt8(ascii: "]"))
            return .text(String(decoding: out.bytes, as: UTF8.self))
        }
    }

    /// A list of integers as one parameter (`bigint[]` literal or JSON array).
    func intListParam(_ values: [Int64]) -> SQLValue {
        let body = values.map(String.init).joined(separator: ",")
        return .text(dialect == .postgres ? "{" + body + "}" : "[" + body + "]")
    }

    /// Rows as one JSON array of arrays (both dialects read it with their JSON functions).
    func rowsParam(_ rows: [[SQLValue]]) -> SQLValue {
        var out = JSONText(capacity: rows.count * 160)
        for (r, row) in rows.enumerated() {
            if r > 0 { out.bytes.append(UInt8(ascii: ",")) }
            out.bytes.append(UInt8(ascii: "["))
            for (i, value) in row.enumerated() {
                if i > 0 { out.bytes.append(UInt8(ascii: ",")) }
                switch value {
                case .null: out.bytes.append(contentsOf: [110, 117, 108, 108])   // null
                case .int(let v): out.bytes.append(contentsOf: String(v).utf8)
                case .double(let v): out.bytes.append(contentsOf: "\(v)".utf8)
                case .text(let s): out.string(s)
                case .blob(let d): out.string(String(decoding: d, as: UTF8.self))
                }
            }
            out.bytes.append(UInt8(ascii: "]"))
        }
        out.bytes.append(UInt8(ascii: "]"))
        return .text(String(decoding: out.bytes, as: UTF8.self))
    }
}

extension SQLValue {
    fileprivate var textValue: String? {
        if case .text(let s) = self { return s }
        return nil
    }
}

/// One audit event for `chain`: its kind and details (any key order; they are sorted).
struct ChainEvent {
    var kind: String
    var data: [(String, String)]
}

/// JSON (and PostgreSQL array literal) text built byte by byte.
struct JSONText {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity + 2)
        bytes.append(UInt8(ascii: "["))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// `s` as a JSON string. Text ends at a NUL character, as a bound C string does (PostgreSQL
    /// text cannot hold one).
    mutating func string(_ s: String, endAtNUL: Bool = true) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var clean = true
            for b in utf8 where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { clean = false; break }
            if clean { bytes.append(contentsOf: utf8); return }
            for b in utf8 {
                switch b {
                case 0 where endAtNUL: return
                case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(b)
                case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(b)
                case UInt8(ascii: "\n"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
                case 0..<0x20:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 48, 48, Self.hex[Int(b >> 4)], Self.hex[Int(b & 0xf)]])
                default: bytes.append(b)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `s` as a quoted element of a PostgreSQL array literal.
    mutating func arrayElement(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            for b in utf8 {
                if b == 0 { break }
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A statement writing rows (INSERT … SELECT or UPDATE … FROM) from a row source `v`: on
/// PostgreSQL the JSON array parameter `$1`, on SQLite a VALUES list.
struct RowStatement: Sendable {
    enum Kind: Sendable { case text, int }

    /// The text on PostgreSQL.
    let postgres: String
    /// The text for one row on PostgreSQL (typed parameters).
    let postgresSingle: String
    /// Up to this many rows, PostgreSQL writes them one statement per row.
    static let postgresRowByRow = 4
    /// Columns per row.
    let columns: Int
    /// The SQLite texts for `sqliteSizes` rows (none when `sqliteEach` is set).
    private let sqliteTexts: [Int: String]
    /// SQLite: a statement for one row, run once per row instead of the multi-row texts. An
    /// `UPDATE … FROM (VALUES …)` first copies its joined rows into a temporary table and then
    /// updates from it; a prepared one-row `UPDATE … WHERE key = ?` does neither, and on the
    /// import's 2 KB request rows it measured about 15% faster per row.
    let sqliteEach: String?

    /// The VALUES sizes a SQLite write is cut into (largest first).
    static let sqliteSizes = [256, 64, 16, 4, 1]

    /// `prefix` + row source + `suffix`; `postgresSuffix` is added on PostgreSQL only.
    init(_ prefix: String, _ columns: [(String, Kind)], _ suffix: String, postgresSuffix: String = "", sqliteEach: String? = nil) {
        self.columns = columns.count
        self.sqliteEach = sqliteEach
        let list = columns.enumerated().map { i, c in c.1 == .text ? "e->>\(i) AS \(c.0)" : "(e->>\(i))::bigint AS \(c.0)" }
        postgres = prefix + "(SELECT \(list.joined(separator: ", ")) FROM jsonb_array_elements($1::jsonb) AS e) AS v" + suffix + postgresSuffix
        let typed = columns.enumerated().map { i, c in "$\(i + 1)::\(c.1 == .text ? "text" : "bigint") AS \(c.0)" }
        postgresSingle = prefix + "(SELECT \(typed.joined(separator: ", "))) AS v" + suffix
            + postgresSuffix.replacingOccurrences(of: "ANY(ARRAY(SELECT e->>0 FROM jsonb_array_elements($1::jsonb) AS e))", with: "$1")
        var texts: [Int: String] = [:]
        let names = columns.enumerated().map { i, c in "column\(i + 1) AS \(c.0)" }.joined(separator: ", ")
        // (A statement run row by row on SQLite needs no multi-row texts.)
        for size in sqliteEach == nil ? Self.sqliteSizes : [] {
            var values = ""
            for r in 0..<size {
                if r > 0 { values += "," }
                values += "(" + SQLRunStore.placeholders(columns.count, from: r * columns.count + 1) + ")"
            }
            texts[size] = prefix + "(SELECT \(names) FROM (VALUES \(values))) AS v" + suffix
        }
        sqliteTexts = texts
    }

    func sqlite(rows: Int) -> String { sqliteTexts[rows]! }
}

/// The statements of the set-based answer, one text per dialect.
struct AnswerSQL: Sendable {
    var requests: String
    /// `requests` without the columns that never change after a request is created (its payload
    /// and its policy: read as `''` and NULL), for answers whose callers hold those already.
    var requestsUnchangingKnown: String
    var votes: String
    var tokensOfRequests: String
    var tokensByHash: String
    var inboundKeys: String
    var outboxIDs: String
    /// PostgreSQL: a transaction lock on each inbound key of `$1`, taken in hash order (empty on
    /// SQLite, whose one writer already serializes the batches).
    var lockInboundKeys: String
    var revokeTokens: String
    var bounce: String

    static let postgres = AnswerSQL(.postgres)
    static let sqlite = AnswerSQL(.sqlite)

    static func `for`(_ dialect: SQLDialect) -> AnswerSQL { dialect == .postgres ? postgres : sqlite }

    // The row writes (the same for both dialects; `RowStatement` holds both texts).
    let useTokens = RowStatement("UPDATE request_tokens SET state = 'used', used_at = v.used_at FROM ",
                                 [("token_hash", .text), ("used_at", .int)],
                                 " WHERE request_tokens.token_hash = v.token_hash", postgresSuffix: byKey("request_tokens.token_hash"),
                                 sqliteEach: "UPDATE request_tokens SET state = 'used', used_at = $2 WHERE token_hash = $1")
    let insertVotes = insert("votes", [("request_id", .text), ("reviewer", .text), ("verdict", .text), ("response", .text),
                                       ("reason", .text), ("channel", .text), ("via", .text), ("token_hash", .text),
                                       ("answered_at", .int)])
    let decideRequests = RowStatement("""
        UPDATE requests SET status = 'answered', response = v.response, decision = v.decision, answered_by = v.answered_by,
            answered_via = v.answered_via, answered_at = v.answered_at FROM
        """ + " ", [("id", .text), ("response", .text), ("decision", .text), ("answered_by", .text), ("answered_via", .text),
                  ("answered_at", .int)], " WHERE requests.id = v.id", postgresSuffix: byKey("requests.id"),
        sqliteEach: """
            UPDATE requests SET status = 'answered', response = $2, decision = $3, answered_by = $4, answered_via = $5,
                answered_at = $6 WHERE id = $1
            """)
    let updateRuns = RowStatement("""
        UPDATE runs SET event_seq = v.event_seq, last_hash = v.last_hash, status = COALESCE(v.status, runs.status),
            updated_at = COALESCE(v.updated_at, runs.updated_at) FROM
        """ + " ", [("id", .text), ("event_seq", .int), ("last_hash", .text), ("status", .text), ("updated_at", .int)],
        " WHERE runs.id = v.id", postgresSuffix: byKey("runs.id"),
        sqliteEach: "UPDATE runs SET event_seq = $2, last_hash = $3, status = COALESCE($4, status), updated_at = COALESCE($5, updated_at) WHERE id = $1")
    let insertInbound = insert("inbound", [("dedupe_key", .text), ("path", .text), ("sender", .text), ("outcome", .text),
                                           ("reason", .text), ("request_id", .text), ("received_at", .int)],
                               " WHERE true ON CONFLICT (dedupe_key) DO NOTHING")
    let insertEvents = insert("events", [("run_id", .text), ("seq", .int), ("kind", .text), ("actor", .text), ("data", .text),
                                         ("at", .int), ("prev_hash", .text), ("hash", .text)])

    /// `columns` (a request column list, each column prefixed with `prefix`) with the payload read
    /// as `''` and the policy as NULL.
    static func withoutUnchanging(_ columns: String, _ prefix: String) -> String {
        columns.split(separator: ",").map { c -> String in
            switch c.trimmingCharacters(in: .whitespaces) {
            case prefix + "request_data": "'' AS request_data"
            case prefix + "policy": "NULL AS policy"
            case let other: other
            }
        }.joined(separator: ", ")
    }

    private static func insert(_ table: String, _ columns: [(String, RowStatement.Kind)], _ suffix: String = "") -> RowStatement {
        RowStatement("INSERT INTO \(table) (\(columns.map(\.0).joined(separator: ", "))) SELECT \(columns.map { "v." + $0.0 }.joined(separator: ", ")) FROM ",
                     columns, suffix)
    }

    /// PostgreSQL: the rows to update also found by index from the first JSON column (its
    /// planner cannot size a JSON function and would rather scan and hash the whole table).
    private static func byKey(_ column: String) -> String {
        " AND \(column) = ANY(ARRAY(SELECT e->>0 FROM jsonb_array_elements($1::jsonb) AS e))"
    }

    private init(_ d: SQLDialect) {
        /// `column` is one of the values of the list parameter `$n`.
        func inList(_ column: String, _ n: Int, ints: Bool = false) -> String {
            d == .postgres ? "\(column) = ANY($\(n)::\(ints ? "bigint" : "text")[])" : "\(column) IN (SELECT value FROM json_each($\(n)))"
        }
        switch d {
        case .postgres:
            // One index lookup per key (a lateral subquery the planner cannot merge): with `= ANY`
            // it scans whole tables as soon as a batch holds a few hundred keys.
            func each(_ columns: String, _ table: String, _ key: String, alias: String) -> String {
                "unnest($1::text[]) AS k(key) CROSS JOIN LATERAL (SELECT \(columns) FROM \(table) WHERE \(key) = k.key OFFSET 0) AS \(alias)"
            }
            // Requests are locked in id order (the keys come sorted), then their runs in run order:
            // concurrent batches take their locks in the same orders.
            requests = """
                SELECT \(SQLRunStore.qualifiedRequestColumns), r.event_seq, r.last_hash, r.status
                FROM \(each(SQLRunStore.requestColumns, "requests", "id", alias: "q")) JOIN runs r ON r.id = q.run_id
                ORDER BY r.id, q.id FOR UPDATE OF r, q
                """
            requestsUnchangingKnown = """
                SELECT \(SQLRunStore.qualifiedRequestColumns), r.event_seq, r.last_hash, r.status
                FROM \(each(Self.withoutUnchanging(SQLRunStore.requestColumns, ""), "requests", "id", alias: "q")) JOIN runs r ON r.id = q.run_id
                ORDER BY r.id, q.id FOR UPDATE OF r, q
                """
            votes = "SELECT v.* FROM \(each(SQLRunStore.voteColumns, "votes", "request_id", alias: "v")) ORDER BY v.request_id, v.answered_at, v.reviewer"
            tokensOfRequests = "SELECT t.* FROM \(each(SQLRunStore.tokenColumns, "request_tokens", "request_id", alias: "t"))"
            tokensByHash = "SELECT t.* FROM \(each(SQLRunStore.tokenColumns, "request_tokens", "token_hash", alias: "t"))"
            inboundKeys = "SELECT i.* FROM \(each("dedupe_key, outcome", "inbound", "dedupe_key", alias: "i"))"
            lockInboundKeys = """
                SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(k, 7346) AS h
                FROM unnest($1::text[]) AS k ORDER BY 1) AS l
                """
        case .sqlite:
            lockInboundKeys = ""

            requests = """
                SELECT \(SQLRunStore.qualifiedRequestColumns), r.event_seq, r.last_hash, r.status FROM runs r JOIN requests q ON q.run_id = r.id
                WHERE \(inList("q.id", 1))
                """
            requestsUnchangingKnown = """
                SELECT \(Self.withoutUnchanging(SQLRunStore.qualifiedRequestColumns, "q.")), r.event_seq, r.last_hash, r.status
                FROM runs r JOIN requests q ON q.run_id = r.id WHERE \(inList("q.id", 1))
                """
            votes = "SELECT \(SQLRunStore.voteColumns) FROM votes WHERE \(inList("request_id", 1)) ORDER BY request_id, answered_at, reviewer"
            tokensOfRequests = "SELECT \(SQLRunStore.tokenColumns) FROM request_tokens WHERE \(inList("request_id", 1))"
            tokensByHash = "SELECT \(SQLRunStore.tokenColumns) FROM request_tokens WHERE \(inList("token_hash", 1))"
            inboundKeys = "SELECT dedupe_key, outcome FROM inbound WHERE \(inList("dedupe_key", 1))"
        }
        outboxIDs = "SELECT id FROM outbox WHERE \(inList("id", 1, ints: true))"
        revokeTokens = "UPDATE request_tokens SET state = 'revoked' WHERE \(inList("request_id", 1)) AND state = 'active'"
        bounce = "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1"
    }
}
