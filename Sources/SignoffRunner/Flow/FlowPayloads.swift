import Foundation
import SignoffEngine
import SignoffLLM

/// What one finished step produced; `{{steps.ID.FIELD}}` reads these fields.
public struct StepResult: Codable, Sendable, Hashable {
    /// The step kind (`shell`, `llm`, `approval`, `ask`, `executor`).
    public var kind: String
    public var stdout: String?
    public var stderr: String?
    public var exitCode: Int?
    /// stdout (shell), the reply (llm) or the output (executor) parsed as JSON, when it is JSON.
    public var json: JobValue?
    /// The model's reply (llm).
    public var text: String?
    public var model: String?
    /// `approve` or `reject` (approval).
    public var decision: String?
    public var reason: String?
    public var comment: String?
    /// Who answered (approval, ask).
    public var by: String?
    /// The answer (ask).
    public var value: JobValue?
    /// The result of a registered executor, as text.
    public var output: String?
    /// Token usage of an llm step (prompt, completion).
    public var promptTokens: Int?
    public var completionTokens: Int?
    /// How many attempts the step took.
    public var attempts: Int?

    public init(kind: String) { self.kind = kind }

    /// The value of `{{steps.ID.FIELD…}}` for `field` and any deeper path.
    public func lookup(_ path: ArraySlice<String>) -> String? {
        guard let field = path.first else { return nil }
        switch field {
        case "stdout": return stdout
        case "stderr": return stderr
        case "exit_code": return exitCode.map(String.init)
        case "text": return text
        case "model": return model
        case "decision": return decision
        case "reason": return reason
        case "comment": return comment
        case "by": return by
        case "value": return value?.description
        case "output": return output
        case "json":
            var v = json
            for key in path.dropFirst() { v = v?[key] }
            return v?.description
        default: return nil
        }
    }
}

/// Who started the run and how, for `{{run.…}}` and the environment of shell steps.
public struct RunInfo: Codable, Sendable, Hashable {
    public var id: String
    public var job: String
    public var attempt: Int
    public var requestedBy: String?
    /// ISO 8601 text (payloads hold no `Date`, so every JSON coder reads them the same way).
    public var startedAt: String

    public init(id: String, job: String, attempt: Int, requestedBy: String?, startedAt: Date) {
        self.id = id
        self.job = job
        self.attempt = attempt
        self.requestedBy = requestedBy
        self.startedAt = ISO8601DateFormatter().string(from: startedAt)
    }
}

/// The message that flows along a job's edges: the input, every result so far, and the feedback
/// of the last rejection. Each step adds its result and passes the whole state on.
public struct FlowState: WorkflowPayload, Hashable {
    public static let typeName = "signoff.flow-state"
    public var run: RunInfo
    public var input: [String: JobValue]
    public var results: [String: StepResult]
    /// The reason of the rejection that sent the run back (`{{feedback}}`), nil otherwise.
    public var feedback: String?
    /// How many times each approval sent the run back.
    public var rounds: [String: Int]
    /// Set when an approval rejected with nowhere to go back to: the run ends as `rejected`.
    public var rejectedBy: String?
    /// Every rejected draft of an llm step with its feedback, oldest first (the seed's growing history).
    public var llmRounds: [String: [LLMStepPrompt.Round]] = [:]

    public init(run: RunInfo, input: [String: JobValue], results: [String: StepResult] = [:],
                feedback: String? = nil, rounds: [String: Int] = [:], rejectedBy: String? = nil) {
        self.run = run
        self.input = input
        self.results = results
        self.feedback = feedback
        self.rounds = rounds
        self.rejectedBy = rejectedBy
    }

    /// Several branches joined (fan-in): later results win, rounds take the maximum.
    public static func merge(_ states: [FlowState]) -> FlowState {
        var merged = states[0]
        for s in states.dropFirst() {
            merged.results.merge(s.results) { _, new in new }
            merged.rounds.merge(s.rounds) { max($0, $1) }
            merged.feedback = merged.feedback ?? s.feedback
            merged.rejectedBy = merged.rejectedBy ?? s.rejectedBy
            merged.llmRounds.merge(s.llmRounds) { $0.count >= $1.count ? $0 : $1 }
        }
        return merged
    }

    /// Renders `{{…}}` placeholders of `text` against this state.
    public func render(_ text: String, job: JobDefinition) -> String {
        TemplateText.render(text) { lookup($0, job: job) }
    }

    /// The value of one placeholder path.
    public func lookup(_ path: [String], job: JobDefinition) -> String? {
        guard let head = path.first else { return nil }
        switch head {
        case "input":
            guard path.count >= 2 else { return nil }
            var v = input[path[1]]
            for key in path.dropFirst(2) { v = v?[key] }
            return v?.description
        case "steps":
            guard path.count >= 3 else { return nil }
            return results[path[1]]?.lookup(path[2...])
        case "feedback": return feedback ?? ""
        case "run":
            switch path.count == 2 ? path[1] : "" {
            case "id": return run.id
            case "attempt": return String(run.attempt)
            case "requested_by": return run.requestedBy ?? ""
            case "job": return run.job
            case "started_at": return run.startedAt
            default: return nil
            }
        case "job":
            switch path.count == 2 ? path[1] : "" {
            case "name": return job.name
            case "description": return job.description ?? ""
            case "owner": return job.owner ?? ""
            default: return nil
            }
        default: return nil
        }
    }
}

/// A question for people, raised by an approval, ask or executor step. The request data the store
/// keeps and the mail shows; the importer reads `expected` to parse replies.
public struct HumanRequest: WorkflowPayload, Hashable {
    public static let typeName = "signoff.human-request"

    /// `approval` (APPROVE / REJECT) or `value` (a typed answer).
    public enum Kind: String, Codable, Sendable, Hashable { case approval, value }

    public var kind: Kind
    /// The step that asks.
    public var stepID: String
    /// The mail subject.
    public var title: String
    /// What the reviewer is shown (a draft, a question).
    public var body: String
    /// For `value`: number, text, choice or date.
    public var valueType: AskStep.ValueType?
    public var choices: [String]
    public var reviewers: [String]
    /// Whether a rejection must carry a reason.
    public var requireReason: Bool
    /// The round of an `on_reject` loop (1 for the first ask).
    public var round: Int
    /// A mail template name, if the job chose one.
    public var template: String?
    /// The flow state to continue with once answered.
    public var state: FlowState?
    /// For executor steps hosting a workflow: the inner request and checkpoint to resume.
    public var inner: InnerRequest?

    public init(kind: Kind, stepID: String, title: String, body: String, valueType: AskStep.ValueType? = nil,
                choices: [String] = [], reviewers: [String], requireReason: Bool = true, round: Int = 1,
                template: String? = nil, state: FlowState?, inner: InnerRequest? = nil) {
        self.kind = kind
        self.stepID = stepID
        self.title = title
        self.body = body
        self.valueType = valueType
        self.choices = choices
        self.reviewers = reviewers
        self.requireReason = requireReason
        self.round = round
        self.template = template
        self.state = state
        self.inner = inner
    }

    /// Decodes request data as the store holds it.
    public static func decode(_ data: Data) throws -> HumanRequest {
        try JSONDecoder().decode(HumanRequest.self, from: data)
    }
}

/// A request of a workflow hosted inside an executor step, with the checkpoint to resume it from.
public struct InnerRequest: Codable, Sendable, Hashable {
    public var requestID: String
    public var responseTypeName: String
    /// The inner workflow's checkpoint, encoded.
    public var checkpoint: Data
}

/// The answer to a `HumanRequest`: what every channel (mail, inbox file, CLI, timeout) produces.
public struct HumanResponse: WorkflowPayload, Hashable {
    public static let typeName = "signoff.human-response"

    /// `approve`, `reject` or `value`.
    public var decision: String
    /// The reason of a rejection, or an approval's comment.
    public var reason: String?
    /// The typed answer of a `value` request.
    public var value: JobValue?
    /// Who answered.
    public var by: String?
    /// Through what (a Message-ID, a file, `cli`, `system:timeout`).
    public var via: String?

    public init(decision: String, reason: String? = nil, value: JobValue? = nil, by: String? = nil, via: String? = nil) {
        self.decision = decision
        self.reason = reason
        self.value = value
        self.by = by
        self.via = via
    }

    /// The response JSON bytes to store with an answer (`Answer.response`), as the engine receives them.
    public var json: Data {
        // The bytes JSONEncoder writes, without its cost (see `JSONWriter`); JSONEncoder itself
        // for what that writer leaves to it.
        if let bytes = ImportJSON.encode(self) { return bytes }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// Response bytes for an approval.
    public static func approve(comment: String? = nil, by: String?, via: String?) -> Data {
        HumanResponse(decision: "approve", reason: comment, by: by, via: via).json
    }

    /// Response bytes for a rejection.
    public static func reject(reason: String?, by: String?, via: String?) -> Data {
        HumanResponse(decision: "reject", reason: reason, by: by, via: via).json
    }

    /// Response bytes for a typed value.
    public static func value(_ value: JobValue, by: String?, via: String?) -> Data {
        HumanResponse(decision: "value", value: value, by: by, via: via).json
    }
}
