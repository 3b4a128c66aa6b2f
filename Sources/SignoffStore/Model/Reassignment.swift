import Foundation

/// Hands a pending request to other people in one transaction: escalation after a deadline, or a
/// reviewer's `DELEGATE:` reply. New tokens are issued, the named old tokens stop working, the
/// reviewer list is replaced, mail goes to the outbox and an audit event records who did it.
public struct RequestReassignment: Sendable {
    /// The pending request.
    public var requestID: String
    /// Tokens for the new reviewers (their request mail carries the plaintext).
    public var tokens: [NewToken]
    /// Reviewers whose active tokens are revoked (case-insensitive).
    public var revokingReviewers: [String]
    /// When set, this exact token must still be active: it is revoked, and the change fails with
    /// `alreadyVoted` / `alreadyDecided` when it was used or revoked meanwhile (delegation).
    public var requiredTokenHash: String?
    /// The request's reviewer list afterwards.
    public var reviewers: [String]
    /// A new quorum, if it changes (escalation hands the decision to the escalation targets).
    public var quorum: Quorum?
    /// A new deadline, if it changes.
    public var dueAt: Date?
    /// A new next reminder time, if it changes (escalation starts its own reminders).
    public var remindAt: Date?
    /// A new stored policy, if it changes (escalation adds its reminder times to the schedule).
    public var policy: Data?
    /// Mail written with the change (request mail, scheduled reminders, notices).
    public var mail: [NewMail]
    /// The inbound message that asked for the change (a DELEGATE reply), logged in the same transaction.
    public var inbound: InboundRecord?
    /// The audit event's kind (`escalated`, `delegated`).
    public var eventKind: String
    /// Who caused it (`system:timeout`, the delegating reviewer).
    public var actor: String?
    /// Extra audit details (e.g. `via`, the Message-ID of the reply).
    public var eventData: [String: String]
    /// When.
    public var at: Date

    /// Describes a reassignment.
    public init(requestID: String, tokens: [NewToken], revokingReviewers: [String] = [], requiredTokenHash: String? = nil,
                reviewers: [String], quorum: Quorum? = nil, dueAt: Date? = nil, remindAt: Date? = nil, policy: Data? = nil,
                mail: [NewMail] = [],
                inbound: InboundRecord? = nil, eventKind: String, actor: String?, eventData: [String: String] = [:], at: Date) {
        self.requestID = requestID
        self.tokens = tokens
        self.revokingReviewers = revokingReviewers
        self.requiredTokenHash = requiredTokenHash
        self.reviewers = reviewers
        self.quorum = quorum
        self.dueAt = dueAt
        self.remindAt = remindAt
        self.policy = policy
        self.mail = mail
        self.inbound = inbound
        self.eventKind = eventKind
        self.actor = actor
        self.eventData = eventData
        self.at = at
    }
}
