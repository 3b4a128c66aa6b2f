import Foundation

/// What the classifier needs to know about a token (returned by the caller's lookup).
public struct InboundTokenInfo: Sendable, Hashable {
    /// The token's state.
    public enum State: String, Sendable, Hashable, Codable {
        /// Open: the token may decide.
        case open
        /// This token already decided.
        case used
        /// The request was decided through another token (another reviewer, a timeout…).
        case decided
        /// Replaced by escalation or delegation.
        case revoked
    }
    public var requestID: String
    public var runID: String?
    public var reviewer: EmailAddress
    public var expiresAt: Date?
    public var state: State
    public var expected: ExpectedResponse
    /// Message-IDs of the mails sent with this token (request, reminders), without brackets.
    public var issuedMessageIDs: [String]

    public init(requestID: String, runID: String? = nil, reviewer: EmailAddress, expiresAt: Date?, state: State,
                expected: ExpectedResponse, issuedMessageIDs: [String] = []) {
        self.requestID = requestID; self.runID = runID; self.reviewer = reviewer; self.expiresAt = expiresAt
        self.state = state; self.expected = expected; self.issuedMessageIDs = issuedMessageIDs
    }
}

/// The classifier's verdict on one message or response file.
public struct InboundResult: Sendable, Hashable {
    /// What happened to one incoming message or response file (EMAIL.md "Every message is
    /// accounted for"). The raw value is the name stored in the inbound log.
    public enum Outcome: String, Sendable, Hashable, Codable, CaseIterable {
        case applied, duplicate, automatic, bounce, unmatched, expired
        case alreadyDecided = "already_decided"
        case senderMismatch = "sender_mismatch"
        case authFailed = "auth_failed"
        case ambiguous
        case invalidValue = "invalid_value"
        case tooLarge = "too_large"
        case unparseable

        /// Whether the message goes to `quarantine/` (with a reason file) rather than `archive/`:
        /// anything unauthenticated, unmatched or unreadable.
        public var quarantines: Bool {
            switch self {
            case .unmatched, .senderMismatch, .authFailed, .tooLarge, .unparseable: return true
            default: return false
            }
        }
    }

    public var outcome: Outcome
    /// Human-readable: what was found and, for a rejection, what the sender should do.
    public var reason: String
    /// `mid:<Message-ID>` or `sha256:<hex of the bytes>`, for dedupe.
    public var dedupeKey: String
    public var messageID: String?
    /// The single From address (or a response file's responder), when there is one.
    public var sender: EmailAddress?
    /// SHA-256 hex of the token (never the token itself), when one was found.
    public var tokenHash: String?
    public var requestID: String?
    public var runID: String?
    /// Set when `outcome == .applied`.
    public var decision: Decision?
    /// For a bounce: the Message-ID of the mail that could not be delivered.
    public var bouncedMessageID: String?
    /// The subject of the incoming message (for the notice's "Re:").
    public var subject: String?

    /// Whether the sender should get a clarification mail (ambiguous or invalid value from the
    /// token's own reviewer; never for automatic mail).
    public var wantsClarification: Bool { outcome == .ambiguous || outcome == .invalidValue }
    /// Whether the sender should get an "already decided" notice.
    public var wantsAlreadyDecidedNotice: Bool { outcome == .alreadyDecided }
}

/// Settings the classifier needs.
public struct InboundConfig: Sendable, Hashable {
    /// The configured reply address (tokens are its sub-address: `approvals+TOKEN@domain`).
    public var replyAddress: EmailAddress
    /// Strict mode: the authserv-id of our own MTA, whose Authentication-Results must show
    /// dmarc=pass. Nil turns strict mode off.
    public var strictAuthservID: String?
    public var limits: MIMELimits

    public init(replyAddress: EmailAddress, strictAuthservID: String?, limits: MIMELimits = .standard) {
        self.replyAddress = replyAddress; self.strictAuthservID = strictAuthservID; self.limits = limits
    }
}
