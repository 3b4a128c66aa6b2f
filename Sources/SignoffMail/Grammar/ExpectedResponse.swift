import Foundation

/// What a request accepts as an answer; the grammar validates a reply against it.
public enum ExpectedResponse: Sendable, Hashable, Codable {
    /// APPROVE or REJECT; `rejectReasonRequired` is true unless the job says otherwise.
    case approval(rejectReasonRequired: Bool)
    /// VALUE of the given type (a bare literal is accepted when the type makes it unambiguous).
    case value(ValueType)

    /// The type of a typed request's answer.
    public enum ValueType: Sendable, Hashable, Codable {
        case number
        /// One of these (compared case-insensitively; the listed spelling is returned).
        case choice([String])
        /// A calendar date written `YYYY-MM-DD`.
        case date
        case text
    }
}

/// A reviewer's decision read from a reply or a response file.
public enum Decision: Sendable, Hashable, Codable {
    case approve(comment: String?)
    case reject(reason: String?)
    case value(DecisionValue)
    /// Hand the request to another reviewer (allowed only for the job's `delegates`; the
    /// caller checks that).
    case delegate(EmailAddress)

    /// `approve`, `reject`, `value` or `delegate`.
    public var kind: String {
        switch self {
        case .approve: return "approve"
        case .reject: return "reject"
        case .value: return "value"
        case .delegate: return "delegate"
        }
    }
}

/// A validated typed value.
public enum DecisionValue: Sendable, Hashable, Codable {
    case number(Decimal)
    case choice(String)
    /// `YYYY-MM-DD`.
    case date(String)
    case text(String)

    /// The value as a JSON fragment (a number or a string), for the engine's response bytes.
    public var jsonFragment: String {
        switch self {
        case .number(let d): return "\(d)"
        case .choice(let s), .date(let s), .text(let s):
            let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
            let arr = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
            return String(arr.dropFirst().dropLast())
        }
    }
}
