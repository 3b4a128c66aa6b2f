import Foundation
import SignoffMail

extension HumanRequest {
    /// The reply grammar this request accepts (what the importer parses replies with).
    public var expectedResponse: ExpectedResponse {
        switch kind {
        case .approval: return .approval(rejectReasonRequired: requireReason)
        case .value:
            switch valueType ?? .text {
            case .number: return .value(.number)
            case .choice: return .value(.choice(choices))
            case .date: return .value(.date)
            case .text: return .value(.text)
            }
        }
    }

    /// How the mail shows the expected answer.
    public var mailResponseKind: MailResponseKind {
        switch kind {
        case .approval: return .approval
        case .value:
            switch valueType ?? .text {
            case .number: return .number
            case .choice: return .choice
            case .date: return .date
            case .text: return .text
            }
        }
    }

    /// The response bytes for a decision read from a reply or a response file.
    public func response(for decision: Decision, by: String?, via: String?) -> Data? {
        switch decision {
        case .approve(let comment): return HumanResponse.approve(comment: comment, by: by, via: via)
        case .reject(let reason): return HumanResponse.reject(reason: reason, by: by, via: via)
        case .value(let v):
            let value: JobValue
            switch v {
            case .number(let d): value = .number(NSDecimalNumber(decimal: d).doubleValue)
            case .choice(let s), .date(let s), .text(let s): value = .string(s)
            }
            return HumanResponse.value(value, by: by, via: via)
        case .delegate: return nil
        }
    }
}
