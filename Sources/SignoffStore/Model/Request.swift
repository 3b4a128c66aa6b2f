import Foundation

/// The state of a human request.
public enum RequestStatus: String, Codable, Sendable, CaseIterable {
    /// Waiting for answers.
    case pending
    /// Decided (the decision is recorded on the request).
    case answered
    /// Its deadline passed without a decision.
    case expired
    /// Withdrawn (its run was cancelled).
    case cancelled
}

/// How many approving votes decide a request.
public enum Quorum: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The first decision wins.
    case any
    /// Every reviewer must approve.
    case all
    /// This many approvals decide.
    case count(Int)

    /// `any`, `all` or a decimal number.
    public var description: String {
        switch self {
        case .any: "any"
        case .all: "all"
        case .count(let n): String(n)
        }
    }

    /// Parses `any`, `all` or a positive number.
    public init?(_ text: String) {
        switch text.lowercased() {
        case "any": self = .any
        case "all": self = .all
        default:
            guard let n = Int(text), n > 0 else { return nil }
            self = .count(n)
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let q = Quorum(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad quorum \(text)"))
        }
        self = q
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Approvals needed given the number of reviewers.
    public func approvalsNeeded(reviewers: Int) -> Int {
        switch self {
        case .any: 1
        case .all: max(reviewers, 1)
        case .count(let n): n
        }
    }
}

/// When a rejection decides a request.
public enum RejectPolicy: String, Sendable, Hashable, Codable {
    /// One rejection decides a reject (the default).
    case any
    /// Rejections count like approvals: the quorum of rejections decides.
    case quorum
}

/// A reply token issued to one reviewer for one request (only its SHA-256 is ever stored).
public struct NewToken: Sendable, Hashable {
    /// Lower-case hex SHA-256 of the token.
    public var tokenHash: String
    /// The reviewer address the token was issued to.
    public var reviewer: String
    /// After this, the token no longer decides anything.
    public var expiresAt: Date?
    /// The Message-ID of the mail that carried it.
    public var messageID: String?

    /// Describes a token to record.
    public init(tokenHash: String, reviewer: String, expiresAt: Date? = nil, messageID: String? = nil) {
        self.tokenHash = tokenHash
        self.reviewer = reviewer
        self.expiresAt = expiresAt
        self.messageID = messageID
    }
}

/// A pending human request to record when a run pauses.
public struct NewRequest: Sendable, Hashable {
    /// The engine's request id (stable across restores of the same checkpoint).
    public var id: String
    /// The executor that asked.
    public var executorID: String
    /// The job step, when the runner knows it.
    public var stepID: String?
    /// The engine's request type name.
    public var requestType: String
    /// The request payload as JSON bytes.
    public var requestData: Data
    /// The engine's response type name.
    public var responseType: String
    /// Who may answer.
    public var reviewers: [String]
    /// One token per reviewer.
    public var tokens: [NewToken]
    /// Approvals needed.
    public var quorum: Quorum
    /// When a rejection decides.
    public var rejectOn: RejectPolicy
    /// Deadline (the runner applies its timeout policy after it).
    public var dueAt: Date?
    /// Next reminder time.
    public var remindAt: Date?
    /// Policy details the runner keeps with the request (on_timeout, escalate_to, delegates, forbid …) as JSON.
    public var policy: Data?

    /// Describes a request to record.
    public init(id: String, executorID: String, stepID: String? = nil, requestType: String,
                requestData: Data, responseType: String, reviewers: [String] = [], tokens: [NewToken] = [],
                quorum: Quorum = .any, rejectOn: RejectPolicy = .any, dueAt: Date? = nil,
                remindAt: Date? = nil, policy: Data? = nil) {
        self.id = id
        self.executorID = executorID
        self.stepID = stepID
        self.requestType = requestType
        self.requestData = requestData
        self.responseType = responseType
        self.reviewers = reviewers
        self.tokens = tokens
        self.quorum = quorum
        self.rejectOn = rejectOn
        self.dueAt = dueAt
        self.remindAt = remindAt
        self.policy = policy
    }
}

/// A stored human request.
public struct RequestRecord: Sendable, Hashable {
    public var id: String
    public var runID: String
    public var executorID: String
    public var stepID: String?
    public var requestType: String
    public var requestData: Data
    public var responseType: String
    public var status: RequestStatus
    public var reviewers: [String]
    public var quorum: Quorum
    public var rejectOn: RejectPolicy
    public var dueAt: Date?
    public var remindAt: Date?
    public var remindersSent: Int
    public var policy: Data?
    /// The deciding response as JSON bytes (what the engine receives).
    public var response: Data?
    /// The decision in words: approve, reject, value, or a timeout action.
    public var decision: String?
    /// Who decided (a reviewer address, `system:timeout`, a CLI user).
    public var answeredBy: String?
    /// Through what: a Message-ID, a file path, `cli`.
    public var answeredVia: String?
    public var answeredAt: Date?
    /// When the runner handed the response to the engine (nil: not yet).
    public var deliveredAt: Date?
    public var createdAt: Date
}

/// The state of a reply token.
public enum TokenState: String, Codable, Sendable, CaseIterable {
    /// Can still be used to answer.
    case active
    /// Its reviewer answered with it.
    case used
    /// Invalidated (request decided by others, escalated, delegated, cancelled).
    case revoked
}

/// What the store knows about a reply token.
public struct TokenRecord: Sendable, Hashable {
    public var tokenHash: String
    public var requestID: String
    public var runID: String
    public var reviewer: String
    public var state: TokenState
    public var expiresAt: Date?
    /// Message-ID of the mail that carried the token.
    public var messageID: String?
    public var issuedAt: Date
    public var usedAt: Date?
}
