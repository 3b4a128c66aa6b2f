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
public protocol ImportPolicy: Sendable {
    /// Rules on `decision` from `reviewer` (the token's owner) for the pending `request`.
    /// `inbound` is the message's log row as it would be written, for a policy that handles it.
    func rule(on decision: Decision, request: RequestRecord, reviewer: String, tokenHash: String?, via: String,
              inbound: InboundRecord, now: Date) async throws -> ImportPolicyRuling
}
