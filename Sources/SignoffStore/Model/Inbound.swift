import Foundation

/// What happened to one inbound message or response file.
public struct InboundOutcome: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let applied = Self("applied")
    public static let duplicate = Self("duplicate")
    public static let automatic = Self("automatic")
    public static let bounce = Self("bounce")
    public static let unmatched = Self("unmatched")
    public static let expired = Self("expired")
    public static let alreadyDecided = Self("already_decided")
    public static let senderMismatch = Self("sender_mismatch")
    public static let authFailed = Self("auth_failed")
    public static let ambiguous = Self("ambiguous")
    public static let invalidValue = Self("invalid_value")
    public static let tooLarge = Self("too_large")
    public static let unparseable = Self("unparseable")
    /// A vote was recorded but the quorum is not met yet.
    public static let voted = Self("voted")
}

/// One row of the inbound log: every message or file the importer saw, and its outcome.
public struct InboundRecord: Sendable, Hashable {
    /// Message-ID, or `sha256:<hex>` of the bytes when there is none. Unique.
    public var dedupeKey: String
    /// Where the file was (Maildir or inbox path).
    public var path: String?
    /// The From address.
    public var sender: String?
    /// What happened.
    public var outcome: InboundOutcome
    /// Why (for quarantines and clarifications).
    public var reason: String?
    /// The matched request, if any.
    public var requestID: String?
    /// When it was processed.
    public var receivedAt: Date

    /// Describes an inbound row.
    public init(dedupeKey: String, path: String? = nil, sender: String? = nil, outcome: InboundOutcome,
                reason: String? = nil, requestID: String? = nil, receivedAt: Date = Date()) {
        self.dedupeKey = dedupeKey
        self.path = path
        self.sender = sender
        self.outcome = outcome
        self.reason = reason
        self.requestID = requestID
        self.receivedAt = receivedAt
    }
}
