import Foundation

/// The kind of an outgoing mail.
public struct MailKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let request = Self("request")
    public static let reminder = Self("reminder")
    public static let confirmation = Self("confirmation")
    public static let clarification = Self("clarification")
    public static let alreadyDecided = Self("already_decided")
    public static let decided = Self("decided")
    public static let failure = Self("failure")
    public static let escalation = Self("escalation")
    public static let delegation = Self("delegation")
}

/// The delivery state of an outbox row (the `outbox.status` column).
public enum OutboxStatus: String, Codable, Sendable, CaseIterable {
    /// Waiting to be sent (first try or a retry) at `nextAttemptAt`.
    case pending
    /// Accepted by the transport.
    case sent
    /// Undeliverable: refused for good (5xx), given up after the retries, or bounced; `lastError` says why.
    case failed
    /// Never sent on purpose: a scheduled reminder that was no longer needed when it fell due
    /// (request decided, token used or revoked, superseded); `lastError` holds the reason.
    case withdrawn
}

/// A mail to put in the outbox (written in the same transaction as what caused it).
public struct NewMail: Sendable, Hashable {
    /// The Message-ID header value (unique).
    public var messageID: String
    public var kind: MailKind
    /// Envelope recipient.
    public var recipient: String
    /// Envelope sender, if not the configured default.
    public var sender: String?
    /// The full RFC 5322 message.
    public var raw: Data
    /// The request this mail is about (pause skips mail for requests that already existed).
    public var requestID: String?
    /// The run it is about.
    public var runID: String?
    /// Do not send before this time.
    public var notBefore: Date?

    /// Describes a mail.
    public init(messageID: String, kind: MailKind, recipient: String, sender: String? = nil, raw: Data,
                requestID: String? = nil, runID: String? = nil, notBefore: Date? = nil) {
        self.messageID = messageID
        self.kind = kind
        self.recipient = recipient
        self.sender = sender
        self.raw = raw
        self.requestID = requestID
        self.runID = runID
        self.notBefore = notBefore
    }
}

/// A stored outbox row.
public struct OutboxMail: Sendable, Hashable {
    public var id: Int64
    public var messageID: String
    public var kind: MailKind
    public var recipient: String
    public var sender: String?
    public var raw: Data
    public var requestID: String?
    public var runID: String?
    public var status: OutboxStatus
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var sentAt: Date?
    public var createdAt: Date
}
