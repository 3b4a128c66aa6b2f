import Foundation

/// What a reviewer (or the system) decided.
public enum Verdict: String, Codable, Sendable, CaseIterable {
    /// Approve.
    case approve
    /// Reject.
    case reject
    /// A typed value (number, choice, text …); any single value decides.
    case value
}

/// Through which channel an answer arrived.
public enum AnswerChannel: String, Codable, Sendable, CaseIterable {
    case mail, file, cli, system
}

/// One reviewer's answer to a request, recorded in one transaction with everything it causes.
public struct Answer: Sendable {
    /// The request answered.
    public var requestID: String
    /// Who answered (reviewer address, `system:timeout`, CLI user).
    public var reviewer: String
    /// Approve, reject or a value.
    public var verdict: Verdict
    /// The response JSON bytes the engine receives if this answer decides.
    public var response: Data
    /// The reason or comment text.
    public var reason: String?
    /// Mail, file, CLI or system.
    public var channel: AnswerChannel
    /// The Message-ID or file path it came through.
    public var via: String?
    /// Hash of the token used (marked `used`), if any.
    public var tokenHash: String?
    /// When it was answered.
    public var at: Date
    /// The inbound log row for the message or file that carried it (written in the same transaction).
    public var inbound: InboundRecord?
    /// Force the decision regardless of quorum (timeouts, an operator's `signoff respond`).
    public var decisive: Bool

    /// Describes an answer.
    public init(requestID: String, reviewer: String, verdict: Verdict, response: Data, reason: String? = nil,
                channel: AnswerChannel, via: String? = nil, tokenHash: String? = nil, at: Date = Date(),
                inbound: InboundRecord? = nil, decisive: Bool = false) {
        self.requestID = requestID
        self.reviewer = reviewer
        self.verdict = verdict
        self.response = response
        self.reason = reason
        self.channel = channel
        self.via = via
        self.tokenHash = tokenHash
        self.at = at
        self.inbound = inbound
        self.decisive = decisive
    }
}

/// One recorded vote.
public struct VoteRecord: Sendable, Hashable {
    public var requestID: String
    public var reviewer: String
    public var verdict: Verdict
    public var response: Data
    public var reason: String?
    public var channel: AnswerChannel
    public var via: String?
    public var tokenHash: String?
    public var at: Date
}

/// The effect of `answer(_:)`.
public struct AnswerResult: Sendable {
    /// The request after the answer.
    public var request: RequestRecord
    /// True when this answer decided the request (the run was queued again).
    public var decided: Bool
    /// All votes so far, oldest first.
    public var votes: [VoteRecord]
    /// Reviewers whose tokens were revoked because the request is decided (they get a "decided" notice).
    public var revokedReviewers: [String]
}
