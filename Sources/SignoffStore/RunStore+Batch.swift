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

    /// Describes one message's writes.
    public init(_ kind: Kind, bouncedMail: (id: Int64, error: String)? = nil) {
        self.kind = kind
        self.bouncedMail = bouncedMail
    }

    /// The dedupe key of the message.
    public var dedupeKey: String {
        switch kind {
        case .answer(let a): return a.inbound?.dedupeKey ?? ""
        case .record(let r): return r.dedupeKey
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
public struct TokenMatch: Sendable {
    public var token: TokenRecord
    public var request: RequestRecord
    public init(token: TokenRecord, request: RequestRecord) { self.token = token; self.request = request }
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
        return results
    }
}
