import Foundation

/// The kinds of mail Signoff sends; each has a subject, text and HTML template.
public enum MailTemplateKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A request for a decision, sent to each reviewer.
    case request
    /// A reminder for an unanswered request, in the request's thread.
    case reminder
    /// Sent to a reviewer after their decision was recorded.
    case confirmation
    /// Sent when a reply decided nothing (ambiguous or invalid).
    case clarification
    /// Sent when a reply arrives for a request that is already decided.
    case alreadyDecided
    /// Sent to a run's owner when a mail could not be delivered.
    case failure
    /// Sent to the reviewers who had not answered when a request was decided without them
    /// (quorum met, a rejection, a timeout); their tokens no longer work.
    case decided

    /// The file-name stem in `templates/`: `request`, …, `already-decided`.
    public var fileStem: String {
        switch self {
        case .alreadyDecided: return "already-decided"
        default: return rawValue
        }
    }
}

/// The answer a request expects, which decides the reply grammar shown in the mail.
public enum MailResponseKind: String, Sendable, Hashable, Codable {
    /// `APPROVE` or `REJECT: reason`.
    case approval
    /// `VALUE: <number>`.
    case number
    /// `VALUE: <one of the choices>`.
    case choice
    /// `VALUE: <YYYY-MM-DD>`.
    case date
    /// `VALUE: <text>`.
    case text
}

/// Everything a mail template can show. The renderer turns it into the variable tree listed
/// in ``MailTemplateContext/knownVariables``; templates may use nothing else.
public struct MailTemplateContext: Sendable, Hashable {
    /// The job (`{{job.name}}`, `{{job.description}}`).
    public struct Job: Sendable, Hashable {
        public var name: String
        public var description: String?
        public init(name: String, description: String? = nil) {
            self.name = name
            self.description = description
        }
    }

    /// The run (`{{run.id}}`, `{{run.attempt}}`, `{{run.owner}}`).
    public struct Run: Sendable, Hashable {
        public var id: String
        public var attempt: Int
        public var owner: String?
        public init(id: String, attempt: Int = 1, owner: String? = nil) {
            self.id = id
            self.attempt = attempt
            self.owner = owner
        }
    }

    /// One named value shown with the request (`{{#request.fields}}{{name}}: {{value}}{{/request.fields}}`).
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The request (`{{request.id}}`, `{{request.title}}`, `{{request.body}}`, …).
    public struct Request: Sendable, Hashable {
        public var id: String
        /// One line; also the subject's main part.
        public var title: String
        /// The text shown to the reviewer (may be several lines).
        public var body: String?
        public var responseKind: MailResponseKind
        /// The allowed values of a `choice` request.
        public var choices: [String]
        /// Data fields shown under the body.
        public var fields: [Field]
        /// Whether `REJECT` needs a reason (the grammar line says so).
        public var reasonRequired: Bool
        public init(id: String, title: String, body: String? = nil, responseKind: MailResponseKind = .approval,
                    choices: [String] = [], fields: [Field] = [], reasonRequired: Bool = true) {
            self.id = id
            self.title = title
            self.body = body
            self.responseKind = responseKind
            self.choices = choices
            self.fields = fields
            self.reasonRequired = reasonRequired
        }
    }

    /// A recorded decision (confirmation and already-decided mail).
    public struct Decision: Sendable, Hashable {
        /// `approved`, `rejected`, `answered`, …
        public var outcome: String
        public var value: String?
        public var reason: String?
        public var by: String?
        public var at: Date?
        public init(outcome: String, value: String? = nil, reason: String? = nil, by: String? = nil, at: Date? = nil) {
            self.outcome = outcome
            self.value = value
            self.reason = reason
            self.by = by
            self.at = at
        }
    }

    /// A delivery failure (the failure notice to the run's owner).
    public struct Failure: Sendable, Hashable {
        public var recipient: String
        /// The mail kind that failed, e.g. `request`.
        public var kind: String
        /// The server's reply or the connection error.
        public var error: String
        public init(recipient: String, kind: String, error: String) {
            self.recipient = recipient
            self.kind = kind
            self.error = error
        }
    }

    /// A link shown in the mail (`{{#links}}<a href="{{url}}">{{label}}</a>{{/links}}`); only
    /// `http://` and `https://` URLs are shown.
    public struct Link: Sendable, Hashable {
        public var label: String
        public var url: String
        public init(label: String, url: String) {
            self.label = label
            self.url = url
        }
    }

    public var job: Job
    public var run: Run
    /// The step id (`{{step.id}}`).
    public var stepID: String
    public var request: Request
    /// The recipient (`{{reviewer.address}}`, `{{reviewer.name}}`).
    public var reviewer: EmailAddress
    /// When the request expires (`{{deadline.text}}`, `{{deadline.iso}}`).
    public var deadline: Date?
    public var links: [Link]
    public var decision: Decision?
    /// Why a reply was not understood (`{{clarification.problem}}`).
    public var clarificationProblem: String?
    public var failure: Failure?
    /// Which reminder this is, 1-based (`{{reminder.number}}`).
    public var reminderNumber: Int?

    public init(job: Job, run: Run, stepID: String, request: Request, reviewer: EmailAddress,
                deadline: Date? = nil, links: [Link] = [], decision: Decision? = nil,
                clarificationProblem: String? = nil, failure: Failure? = nil, reminderNumber: Int? = nil) {
        self.job = job
        self.run = run
        self.stepID = stepID
        self.request = request
        self.reviewer = reviewer
        self.deadline = deadline
        self.links = links
        self.decision = decision
        self.clarificationProblem = clarificationProblem
        self.failure = failure
        self.reminderNumber = reminderNumber
    }

    /// The line below the reviewer's typing area; the importer cuts the reply there.
    public static let replyAboveMarker = "-- reply above this line --"

    /// The reply grammar lines for this request, as shown at the top of the mail.
    public var grammarLines: [(command: String, meaning: String)] {
        switch request.responseKind {
        case .approval:
            return [("APPROVE", "approve; a comment may follow after a colon"),
                    (request.reasonRequired ? "REJECT: reason" : "REJECT",
                     request.reasonRequired ? "reject, and say why" : "reject; a reason may follow after a colon")]
        case .number: return [("VALUE: 42", "answer with a number")]
        case .date: return [("VALUE: 2026-12-31", "answer with a date (YYYY-MM-DD)")]
        case .text: return [("VALUE: your answer", "answer with text; it may go on over several lines")]
        case .choice:
            let list = request.choices.joined(separator: ", ")
            return [("VALUE: \(request.choices.first ?? "choice")", "answer with one of: \(list)")]
        }
    }

    /// The variable tree handed to Mustache. Absent values are left out, so `{{#x}}…{{/x}}`
    /// sections show only when there is something to show.
    func variables(tag: String) -> [String: Any] {
        func put(_ dict: inout [String: Any], _ key: String, _ value: String?) {
            if let value, !value.isEmpty { dict[key] = value }
        }
        var job: [String: Any] = ["name": self.job.name]
        put(&job, "description", self.job.description)
        var run: [String: Any] = ["id": self.run.id, "attempt": String(self.run.attempt)]
        put(&run, "owner", self.run.owner)
        var request: [String: Any] = [
            "id": self.request.id, "title": self.request.title,
            "responseType": self.request.responseKind.rawValue,
            "isApproval": self.request.responseKind == .approval,
            "choices": self.request.choices,
            "hasChoices": !self.request.choices.isEmpty,
            "fields": self.request.fields.map { ["name": $0.name, "value": $0.value] as [String: Any] },
            "hasFields": !self.request.fields.isEmpty,
        ]
        put(&request, "body", self.request.body)
        var reviewer: [String: Any] = ["address": self.reviewer.address]
        put(&reviewer, "name", self.reviewer.displayName)
        var vars: [String: Any] = [
            "job": job, "run": run, "step": ["id": stepID] as [String: Any], "request": request,
            "reviewer": reviewer, "marker": MailTemplateContext.replyAboveMarker, "tag": tag,
            "grammar": grammarVariables(),
            // Only web links: a `javascript:` or `data:` URL from job input never reaches an href.
            "links": links.filter { $0.url.lowercased().hasPrefix("https://") || $0.url.lowercased().hasPrefix("http://") }
                .map { ["label": $0.label, "url": $0.url] as [String: Any] },
        ]
        if let deadline {
            vars["deadline"] = ["text": MailTemplateContext.humanDate(deadline),
                                "iso": MailTemplateContext.isoDate(deadline)] as [String: Any]
        }
        if let decision {
            var d: [String: Any] = ["outcome": decision.outcome]
            put(&d, "value", decision.value)
            put(&d, "reason", decision.reason)
            put(&d, "by", decision.by)
            if let at = decision.at { d["at"] = MailTemplateContext.humanDate(at) }
            vars["decision"] = d
        }
        if let clarificationProblem, !clarificationProblem.isEmpty {
            vars["clarification"] = ["problem": clarificationProblem] as [String: Any]
        }
        if let failure {
            vars["failure"] = ["recipient": failure.recipient, "kind": failure.kind, "error": failure.error] as [String: Any]
        }
        if let reminderNumber { vars["reminder"] = ["number": String(reminderNumber)] as [String: Any] }
        return vars
    }

    /// The same tree as ``variables(tag:)``, typed, for the compiled renderer. The two must stay
    /// in step (a test renders every built-in template both ways and compares).
    func templateValue(tag: String) -> TemplateValue {
        func put(_ dict: inout TemplateObject, _ key: String, _ value: String?) {
            if let value, !value.isEmpty { dict.append(key, .string(value)) }
        }
        var job: TemplateObject = ["name": .string(self.job.name)]
        put(&job, "description", self.job.description)
        var run: TemplateObject = ["id": .string(self.run.id), "attempt": .string(String(self.run.attempt))]
        put(&run, "owner", self.run.owner)
        var request: TemplateObject = [
            "id": .string(self.request.id), "title": .string(self.request.title),
            "responseType": .string(self.request.responseKind.rawValue),
            "isApproval": .bool(self.request.responseKind == .approval),
            "choices": .list(self.request.choices.map(TemplateValue.string)),
            "hasChoices": .bool(!self.request.choices.isEmpty),
            "fields": .list(self.request.fields.map { .object(["name": .string($0.name), "value": .string($0.value)]) }),
            "hasFields": .bool(!self.request.fields.isEmpty),
        ]
        put(&request, "body", self.request.body)
        var reviewer: TemplateObject = ["address": .string(self.reviewer.address)]
        put(&reviewer, "name", self.reviewer.displayName)
        var vars: TemplateObject = [
            "job": .object(job), "run": .object(run), "step": .object(["id": .string(stepID)]), "request": .object(request),
            "reviewer": .object(reviewer), "marker": .string(MailTemplateContext.replyAboveMarker), "tag": .string(tag),
            "grammar": .list(grammarLinesPadded().map {
                .object(["command": .string($0.command), "meaning": .string($0.meaning), "padded": .string($0.padded)])
            }),
            "links": .list(webLinks.map { .object(["label": .string($0.label), "url": .string($0.url)]) }),
        ]
        if let deadline {
            vars.append("deadline", .object(["text": .string(MailTemplateContext.humanDate(deadline)),
                                        "iso": .string(MailTemplateContext.isoDate(deadline))]))
        }
        if let decision {
            var d: TemplateObject = ["outcome": .string(decision.outcome)]
            put(&d, "value", decision.value)
            put(&d, "reason", decision.reason)
            put(&d, "by", decision.by)
            if let at = decision.at { d.append("at", .string(MailTemplateContext.humanDate(at))) }
            vars.append("decision", .object(d))
        }
        if let clarificationProblem, !clarificationProblem.isEmpty {
            vars.append("clarification", .object(["problem": .string(clarificationProblem)]))
        }
        if let failure {
            vars.append("failure", .object(["recipient": .string(failure.recipient), "kind": .string(failure.kind),
                                              "error": .string(failure.error)]))
        }
        if let reminderNumber { vars.append("reminder", .object(["number": .string(String(reminderNumber))])) }
        return .object(vars)
    }

    /// Only web links: a `javascript:` or `data:` URL from job input never reaches an href.
    private var webLinks: [Link] {
        links.filter { $0.url.lowercased().hasPrefix("https://") || $0.url.lowercased().hasPrefix("http://") }
    }

    /// Grammar lines with the command padded so the meanings line up in plain text.
    private func grammarLinesPadded() -> [(command: String, meaning: String, padded: String)] {
        let lines = grammarLines
        let width = (lines.map { $0.command.count }.max() ?? 0) + 4
        return lines.map { ($0.command, $0.meaning, $0.command + String(repeating: " ", count: width - $0.command.count)) }
    }

    /// Grammar lines with `padded`: the command padded so the meanings line up in plain text.
    private func grammarVariables() -> [[String: Any]] {
        let lines = grammarLines
        let width = (lines.map { $0.command.count }.max() ?? 0) + 4
        return lines.map { line in
            ["command": line.command, "meaning": line.meaning,
             "padded": line.command + String(repeating: " ", count: width - line.command.count)] as [String: Any]
        }
    }

    /// The shape of every variable a template may use; `MailTemplates.validate` checks
    /// templates against it.
    public static let knownVariables: MailVariableShape = .object([
        "job": .object(["name": .scalar, "description": .scalar]),
        "run": .object(["id": .scalar, "attempt": .scalar, "owner": .scalar]),
        "step": .object(["id": .scalar]),
        "request": .object([
            "id": .scalar, "title": .scalar, "body": .scalar, "responseType": .scalar,
            "isApproval": .scalar, "choices": .list(.scalar), "hasChoices": .scalar,
            "fields": .list(.object(["name": .scalar, "value": .scalar])), "hasFields": .scalar,
        ]),
        "reviewer": .object(["address": .scalar, "name": .scalar]),
        "deadline": .object(["text": .scalar, "iso": .scalar]),
        "grammar": .list(.object(["command": .scalar, "meaning": .scalar, "padded": .scalar])),
        "marker": .scalar,
        "tag": .scalar,
        "links": .list(.object(["label": .scalar, "url": .scalar])),
        "decision": .object(["outcome": .scalar, "value": .scalar, "reason": .scalar, "by": .scalar, "at": .scalar]),
        "clarification": .object(["problem": .scalar]),
        "failure": .object(["recipient": .scalar, "kind": .scalar, "error": .scalar]),
        "reminder": .object(["number": .scalar]),
    ])

    /// `Mon, 23 Nov 2026 17:00 UTC`: unambiguous for readers anywhere.
    static func humanDate(_ date: Date) -> String {
        let full = MailDate.format(date)          // "Mon, 23 Nov 2026 17:00:00 +0000"
        return String(full.dropLast(9)) + " UTC"  // drop ":00 +0000"
    }

    static func isoDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ n: Int32, _ w: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2))Z"
    }
}

/// The shape of a template variable: a value, an object with named members, or a list.
public indirect enum MailVariableShape: Sendable, Hashable {
    case scalar
    case object([String: MailVariableShape])
    case list(MailVariableShape)
}
