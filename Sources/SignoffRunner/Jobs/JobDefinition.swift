import Foundation

/// A job file (`jobs/NAME.yaml`), parsed and validated.
public struct JobDefinition: Sendable, Hashable, Codable {
    /// The job's name; `signoff enqueue NAME` refers to it. Letters, digits, `-`, `_`, `.`.
    public var name: String
    /// One line shown in `signoff jobs list`.
    public var description: String?
    /// Gets failure and bounce notices.
    public var owner: String?
    /// A systemd `OnCalendar=` expression; `signoff systemd` turns it into a timer.
    public var schedule: String?
    /// Default inputs; `--input key=value` overrides. Also the declaration of `{{input.KEY}}`.
    public var input: [String: JobValue]
    /// The default retry policy of every shell, llm and executor step.
    public var retry: RetryPolicy?
    /// The default timeout of every shell, llm and executor step, in seconds.
    public var timeout: Double?
    /// A mail template used by the job's approval and ask steps unless a step names its own.
    public var template: String?
    /// The superstep limit of one `signoff run` of this job.
    public var maxSupersteps: Int?
    /// The steps, in file order.
    public var steps: [StepDefinition]
    /// The file this came from.
    public var file: String

    public init(name: String, description: String? = nil, owner: String? = nil, schedule: String? = nil,
                input: [String: JobValue] = [:], retry: RetryPolicy? = nil, timeout: Double? = nil,
                template: String? = nil, maxSupersteps: Int? = nil, steps: [StepDefinition], file: String) {
        self.name = name
        self.description = description
        self.owner = owner
        self.schedule = schedule
        self.input = input
        self.retry = retry
        self.timeout = timeout
        self.template = template
        self.maxSupersteps = maxSupersteps
        self.steps = steps
        self.file = file
    }

    /// The folder of the job file: shell steps run there.
    public var folder: String { (file as NSString).deletingLastPathComponent }

    /// The step with `id`.
    public func step(_ id: String) -> StepDefinition? { steps.first { $0.id == id } }

    /// The steps `id` waits for: its `needs:`, or the step before it in the file.
    public func dependencies(of id: String) -> [String] {
        guard let index = steps.firstIndex(where: { $0.id == id }) else { return [] }
        if let needs = steps[index].needs { return needs }
        return index == 0 ? [] : [steps[index - 1].id]
    }

    /// Every step `id` transitively waits for.
    public func ancestors(of id: String) -> Set<String> {
        var seen: Set<String> = []
        var stack = dependencies(of: id)
        while let next = stack.popLast() {
            if seen.insert(next).inserted { stack.append(contentsOf: dependencies(of: next)) }
        }
        return seen
    }

    /// The steps that wait for `id` directly.
    public func dependents(of id: String) -> [String] {
        steps.filter { dependencies(of: $0.id).contains(id) }.map(\.id)
    }
}

/// One step of a job.
public struct StepDefinition: Sendable, Hashable, Codable {
    /// Unique within the job; `{{steps.ID.…}}` refers to it.
    public var id: String
    /// Steps this one waits for; nil means "the step before it". `[]` starts at once.
    public var needs: [String]?
    /// Kills the step after this many seconds (shell, llm, executor).
    public var timeout: Double?
    /// Overrides the job's retry policy.
    public var retry: RetryPolicy?
    /// Extra environment for a shell step (values templated).
    public var env: [String: String]?
    /// What the step does.
    public var kind: StepKind

    public init(id: String, needs: [String]? = nil, timeout: Double? = nil, retry: RetryPolicy? = nil,
                env: [String: String]? = nil, kind: StepKind) {
        self.id = id
        self.needs = needs
        self.timeout = timeout
        self.retry = retry
        self.env = env
        self.kind = kind
    }
}

/// What a step does: exactly one of the step kinds.
public enum StepKind: Sendable, Hashable, Codable {
    /// Runs a program (an argv, never a shell string).
    case shell(ShellStep)
    /// Asks reviewers to approve or reject.
    case approval(ApprovalStep)
    /// Asks reviewers for a typed value.
    case ask(AskStep)
    /// Calls a chat model.
    case llm(LLMPromptStep)
    /// Runs a Swift executor a program registered by name.
    case executor(ExecutorStep)

    /// The key that introduces this kind in a job file.
    public var keyword: String {
        switch self {
        case .shell: return "shell"
        case .approval: return "approval"
        case .ask: return "ask"
        case .llm: return "llm"
        case .executor: return "executor"
        }
    }

    /// Whether the step waits for a person.
    public var isHuman: Bool {
        switch self {
        case .approval, .ask: return true
        default: return false
        }
    }
}

/// `shell: [program, args…]`.
public struct ShellStep: Sendable, Hashable, Codable {
    /// The program and its arguments; each may contain `{{…}}`.
    public var argv: [String]
    public init(argv: [String]) { self.argv = argv }
}

/// `retry: { attempts: 3, backoff: 30s }`.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Total attempts, including the first.
    public var attempts: Int
    /// Wait before the second attempt, in seconds; doubles after each failure.
    public var backoff: Double
    /// The longest wait between attempts, in seconds.
    public var maxBackoff: Double?

    public init(attempts: Int, backoff: Double, maxBackoff: Double? = nil) {
        self.attempts = attempts
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// The wait before attempt `n` (2-based: the first retry is attempt 2).
    public func delay(beforeAttempt n: Int) -> Double {
        guard n >= 2 else { return 0 }
        let raw = backoff * pow(2, Double(n - 2))
        return min(raw, maxBackoff ?? 3600)
    }
}

/// Who must answer and how many answers decide (issue 8's policy keys, shared by approval and ask).
public struct HumanPolicy: Sendable, Hashable, Codable {
    /// `any` (first answer decides), `all`, or a number of approvals.
    public enum Quorum: Sendable, Hashable, Codable, CustomStringConvertible {
        case any
        case all
        case count(Int)
        public var description: String {
            switch self {
            case .any: return "any"
            case .all: return "all"
            case .count(let n): return String(n)
            }
        }
        /// How many approvals decide among `reviewers` reviewers.
        public func required(of reviewers: Int) -> Int {
            switch self {
            case .any: return 1
            case .all: return reviewers
            case .count(let n): return n
            }
        }
    }
    /// What happens when the request expires.
    public enum TimeoutAction: String, Sendable, Hashable, Codable, CaseIterable {
        case reject, approve, fail, escalate
    }
    /// When one rejection decides.
    public enum RejectOn: String, Sendable, Hashable, Codable, CaseIterable {
        case any, quorum
    }

    /// The addresses asked.
    public var reviewers: [String]
    /// The mail subject (templated).
    public var subject: String?
    /// What the mail shows the reviewer (templated), e.g. `{{steps.draft.stdout}}`.
    public var show: String?
    /// A mail template name (a file in `templates/`) instead of the built-in request template.
    public var template: String?
    public var quorum: Quorum
    public var rejectOn: RejectOn
    /// Seconds until the request expires.
    public var expiresAfter: Double?
    public var onTimeout: TimeoutAction
    /// Seconds between reminders.
    public var remindEvery: Double?
    /// At most this many reminders (default 3).
    public var reminders: Int
    /// Who gets the request after expiry when `on_timeout: escalate`.
    public var escalateTo: [String]
    /// Addresses a reviewer may delegate to by replying `DELEGATE: address`.
    public var delegates: [String]
    /// Who may not answer: `requester` (whoever enqueued the run) or addresses.
    public var forbid: [String]

    public init(reviewers: [String], subject: String? = nil, show: String? = nil, template: String? = nil,
                quorum: Quorum = .any, rejectOn: RejectOn = .any, expiresAfter: Double? = nil,
                onTimeout: TimeoutAction = .reject, remindEvery: Double? = nil, reminders: Int = 3,
                escalateTo: [String] = [], delegates: [String] = [], forbid: [String] = []) {
        self.reviewers = reviewers
        self.subject = subject
        self.show = show
        self.template = template
        self.quorum = quorum
        self.rejectOn = rejectOn
        self.expiresAfter = expiresAfter
        self.onTimeout = onTimeout
        self.remindEvery = remindEvery
        self.reminders = reminders
        self.escalateTo = escalateTo
        self.delegates = delegates
        self.forbid = forbid
    }
}

/// `approval: { reviewers: […], … }`.
public struct ApprovalStep: Sendable, Hashable, Codable {
    public var policy: HumanPolicy
    /// A rejection goes back to this earlier step, which runs again with `{{feedback}}` set.
    public var onReject: String?
    /// How many times the loop through `on_reject` may run (default 3).
    public var maxRounds: Int
    /// Whether a rejection must carry a reason (default true).
    public var requireReason: Bool

    public init(policy: HumanPolicy, onReject: String? = nil, maxRounds: Int = 3, requireReason: Bool = true) {
        self.policy = policy
        self.onReject = onReject
        self.maxRounds = maxRounds
        self.requireReason = requireReason
    }
}

/// `ask: { reviewers: […], question: …, type: number|text|choice|date, choices: […] }`.
public struct AskStep: Sendable, Hashable, Codable {
    /// The value's type.
    public enum ValueType: String, Sendable, Hashable, Codable, CaseIterable {
        case number, text, choice, date
    }
    public var policy: HumanPolicy
    /// The question (templated).
    public var question: String
    public var type: ValueType
    /// The allowed answers of a `choice`.
    public var choices: [String]

    public init(policy: HumanPolicy, question: String, type: ValueType, choices: [String] = []) {
        self.policy = policy
        self.question = question
        self.type = type
        self.choices = choices
    }
}

/// `llm: { system, prompt, model, temperature, max_tokens }`.
public struct LLMPromptStep: Sendable, Hashable, Codable {
    public var system: String?
    public var prompt: String
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?

    public init(system: String? = nil, prompt: String, model: String? = nil, temperature: Double? = nil,
                maxTokens: Int? = nil) {
        self.system = system
        self.prompt = prompt
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
    }
}

/// `executor: NAME` or `executor: { name: NAME, with: {…} }`.
public struct ExecutorStep: Sendable, Hashable, Codable {
    /// The name a Swift program registered.
    public var name: String
    /// Arguments handed to the executor (strings templated).
    public var with: [String: JobValue]
    /// Who answers the questions of a hosted workflow (approvals and values it asks for).
    public var reviewers: [String]
    /// The mail subject of those questions (templated).
    public var subject: String?

    public init(name: String, with: [String: JobValue] = [:], reviewers: [String] = [], subject: String? = nil) {
        self.name = name
        self.with = with
        self.reviewers = reviewers
        self.subject = subject
    }
}
