import Foundation
import SignoffMail
import SignoffStore

/// What the runner's request policies say about a decision read from a reply or a response
/// file, before the importer records it as a vote.
public enum ImportPolicyRuling: Sendable {
    /// Record it as a vote as usual.
    case proceed
    /// Refuse it: the message is logged as `invalid_value` with `reason`, nothing else changes, and
    /// the reviewer is told `reason` (e.g. separation of duties, a delegate not listed).
    case refuse(reason: String)
    /// The policy acted on the message itself and logged its inbound row in the same transaction
    /// (e.g. a delegation); `mail` goes to the outbox after that.
    case handled(outcome: InboundResult.Outcome, reason: String, mail: [NewMail])
    /// The message was already logged (a redelivery or a concurrent importer).
    case duplicate
}

/// Request policies the importer applies (the runner's `forbid:` and `delegates:`). Optional: an
/// importer without one records every decision the interpreter accepts.
///
/// Two steps, so a batched importer can check in its read-only phase and leave the rare message
/// the policy acts on to the one-by-one path: `refusal` only reads; `act` writes (in one
/// transaction, with the message's inbound row) and is called only when `acts(on:)` is true and
/// `refusal` said nothing.
public protocol ImportPolicy: Sendable {
    /// Why `decision` from `reviewer` (the token's owner) may not be recorded for the pending
    /// `request`, or nil. Reads only.
    func refusal(for decision: Decision, request: RequestRecord, reviewer: String) async throws -> String?
    /// True when the policy records `decision` itself instead of a vote (a delegation).
    func acts(on decision: Decision) -> Bool
    /// Records `decision` (e.g. hands the request to a delegate) with `inbound`, the message's log
    /// row as it would be written, in one transaction.
    func act(on decision: Decision, request: RequestRecord, reviewer: String, tokenHash: String?, via: String,
             inbound: InboundRecord, now: Date) async throws -> ImportPolicyRuling
}

extension ImportPolicy {
    /// Both steps for the one-by-one path.
    public func rule(on decision: Decision, request: RequestRecord, reviewer: String, tokenHash: String?, via: String,
                     inbound: InboundRecord, now: Date) async throws -> ImportPolicyRuling {
        if let reason = try await refusal(for: decision, request: request, reviewer: reviewer) { return .refuse(reason: reason) }
        guard acts(on: decision) else { return .proceed }
        return try await act(on: decision, request: request, reviewer: reviewer, tokenHash: tokenHash, via: via, inbound: inbound, now: now)
    }
}

extension ImportPass {
    /// The Message-IDs of the reminders sent with `token` (replies to them are in the request's thread).
    static func reminderIDs(_ token: TokenRecord, _ request: RequestRecord) -> [String] {
        guard request.policy != nil, let messageID = token.messageID,
              let rounds = ImportedRequests.policy(request)?.reminders, rounds > 0 else { return [] }
        return ReminderMessageID.all(tokenHash: token.tokenHash, rounds: rounds, requestMessageID: messageID)
    }
}
