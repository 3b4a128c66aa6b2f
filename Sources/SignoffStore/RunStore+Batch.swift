import Foundation

/// One inbound message's writes in an import batch (`RunStore.recordInboundBatch`).
public struct InboundWrite: Sendable {
    /// What to write.
    public enum Kind: Sendable {
        /// An answer carrying its inbound row in `answer.inbound`. When the store refuses it as
        /// already decided or already voted, the inbound row is recorded instead, with outcome
        /// `already_decided` and the refusal as its reason.
        case answer(Answer)
        /// An inbound row alone.
        case record(InboundRecord)
    }

    public var kind: Kind
    /// A bounce: the outbox mail that could not be delivered, marked failed for good in the same
    /// transaction (only when the inbound row is newly recorded).
    public var bouncedMail: (id: Int64, error: String)?
    /// Outbox mail (the import's notices) written in the same transaction, chosen by what the write did.
    public var mail: InboundMail
    /// The request an `.answer` answers, as the caller read it (the import's token lookup). The
    /// store reads the request again in the transaction, but not the columns that never change
    /// after it was created (its payload and its policy): those are taken from this record.
    public var request: RequestRecord?

    /// Describes one message's writes.
    public init(_ kind: Kind, bouncedMail: (id: Int64, error: String)? = nil, mail: InboundMail = InboundMail(),
                request: RequestRecord? = nil) {
        self.kind = kind
        self.bouncedMail = bouncedMail
        self.mail = mail
        self.request = request
    }

    /// The dedupe key of the message.
    public var dedupeKey: String {
        switch kind {
        case .answer(let a): return a.inbound?.dedupeKey ?? ""
        case .record(let r): return r.dedupeKey
        }
    }
}

/// The mail one inbound write queues in its own transaction (so a crash cannot keep the decision
/// and lose the notice). Which list is written depends on what the write did:
/// - `.answered(r)` with `r.decided == answeredDecided`: `answered` (a confirmation composed for
///   that outcome); with the other outcome nothing (the caller composes it after the commit);
/// - `.recorded`: `recorded` (a clarification, an already-decided notice, a bounce notice);
/// - `.refused`, `.duplicate`, `.failed`: nothing.
public struct InboundMail: Sendable {
    /// Written when the answer is recorded and its `decided` equals `answeredDecided`.
    public var answered: [NewMail]
    /// The outcome `answered` was composed for.
    public var answeredDecided: Bool
    /// Written when the inbound row alone is recorded.
    public var recorded: [NewMail]

    /// Describes the mail of one write (none by default).
    public init(answered: [NewMail] = [], answeredDecided: Bool = false, recorded: [NewMail] = []) {
        self.answered = answered
        self.answeredDecided = answeredDecided
        self.recorded = recorded
    }

    /// The mail to write for `result` (see the type's documentation).
    public func chosen(for result: InboundWriteResult) -> [NewMail] {
        switch result {
        case .answered(let r): return r.decided == answeredDecided ? answered : []
        case .recorded: return recorded
        case .refused, .duplicate, .failed: return []
        }
    }
}

/// What `recordInboundBatch` did with one write, in the order of the writes.
public enum InboundWriteResult: Sendable {
    /// The answer was recorded (with its inbound row).
    case answered(AnswerResult)
    /// The inbound row was recorded.
    case recorded
    /// The answer was refused (already decided or already voted): the inbound row was recorded
    /// with outcome `already_decided` and this error's message as the reason.
    case refused(StoreError)
    /// The dedupe key was recorded before (by an earlier pass, another importer, or an earlier
    /// write of this batch): nothing was written. The outcome recorded first, if known.
    case duplicate(InboundOutcome?)
    /// This write failed for another reason; none of it was written (the rest of the batch was).
    case failed(StoreError)
}

/// A reply token and the request it was issued for (`RunStore.tokenLookups`).
///
/// A class (immutable): the import hands each match through dictionaries, chunks and tasks, and
/// copying a reference costs one retain where copying the records' fields cost dozens.
public final class TokenMatch: Sendable {
    public let token: TokenRecord
    public let request: RequestRecord
    /// The request's run, when the store read it in the same go (the SQL stores do).
    public let run: RunRecord?
    public init(token: TokenRecord, request: RequestRecord, run: RunRecord? = nil) {
        self.token = token; self.request = request; self.run = run
    }
}

extension RunStore {
    /// The one-read-per-token fallback: `tokenLookup` and `request(id:)` for each hash. Hashes
    /// without a token (or whose request is gone) are absent from the result.
    public func tokenLookups(tokenHashes: [String]) async throws -> [String: TokenMatch] {
        var out: [String: TokenMatch] = [:]
        for hash in Set(tokenHashes) {
            if let token = try await tokenLookup(tokenHash: hash), let request = try await request(id: token.requestID) {
                out[hash] = TokenMatch(token: token, request: request)
            }
        }
        return out
    }

    /// The one-read-per-run fallback: `run(id:)` for each id.
    public func runs(ids: [String]) async throws -> [String: RunRecord] {
        var out: [String: RunRecord] = [:]
        for id in Set(ids) { if let run = try await run(id: id) { out[id] = run } }
        return out
    }

    /// The one-transaction-per-answer fallback: `answer(_:)` for each, in order.
    public func answerMany(_ answers: [Answer]) async throws -> [Result<AnswerResult, StoreError>] {
        var results: [Result<AnswerResult, StoreError>] = []
        results.reserveCapacity(answers.count)
        for answer in answers {
            do {
                results.append(.success(try await self.answer(answer)))
            } catch let error as StoreError where error.code != .connectionLost && error.code != .closed {
                results.append(.failure(error))
            }
        }
        return results
    }

    /// The one-transaction-per-message fallback: the same results as the batch, written by the
    /// single-message calls one after the other.
    public func recordInboundBatch(_ writes: [InboundWrite], now: Date) async throws -> [InboundWriteResult] {
        var results: [InboundWriteResult] = []
        results.reserveCapacity(writes.count)
        for write in writes {
            if let seen = try await inboundSeen(dedupeKey: write.dedupeKey) {
                results.append(.duplicate(seen))
                continue
            }
            switch write.kind {
            case .answer(let answer):
                do {
                    results.append(.answered(try await self.answer(answer)))
                } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
                    if let seen = try await inboundSeen(dedupeKey: write.dedupeKey) {
                        results.append(.duplicate(seen))
                    } else if var row = answer.inbound {
                        row.outcome = .alreadyDecided
                        row.reason = error.message
                        if row.requestID == nil { row.requestID = answer.requestID }
                        results.append(try await recordInbound(row) ? .refused(error) : .duplicate(try await inboundSeen(dedupeKey: row.dedupeKey)))
                    } else {
                        results.append(.refused(error))
                    }
                } catch let error as StoreError {
                    results.append(.failed(error))
                }
            case .record(let row):
                if try await recordInbound(row) {
                    if let bounced = write.bouncedMail {
                        try await markAttemptFailed(id: bounced.id, error: bounced.error, permanent: true, nextAttempt: nil, now: now)
                    }
                    results.append(.recorded)
                } else {
                    results.append(.duplicate(try await inboundSeen(dedupeKey: row.dedupeKey)))
                }
            }
        }
        // (this fallback queues each write's mail after its write, not in the same transaction)
        var mail: [NewMail] = []
        for (write, result) in zip(writes, results) { mail += write.mail.chosen(for: result) }
        if !mail.isEmpty { try await enqueueMail(mail, now: now) }
        return results
    }
}
