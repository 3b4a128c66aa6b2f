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

    /// The same tree as ``variables(tag:)``, flat and typed, for the compiled renderer. The two
    /// must stay in step (a test renders every built-in template both ways and compares).
    func templateValue(tag: String) -> TemplateTree {
        func nonEmpty(_ value: String?) -> String? {
            guard let value, !value.isEmpty else { return nil }
            return value
        }
        let clarification = nonEmpty(clarificationProblem)
        var rootCount = 9
        if deadline != nil { rootCount += 1 }
        if decision != nil { rootCount += 1 }
        if clarification != nil { rootCount += 1 }
        if failure != nil { rootCount += 1 }
        if reminderNumber != nil { rootCount += 1 }
        var t = TemplateTree(rootMembers: rootCount, byteCapacity: 512 + (request.body?.utf8.count ?? 0))
        var s = TemplateTree.rootFirst
        t.setObject(s, .job, .name, job.name, .description, nonEmpty(job.description))
        s += 1
        t.setObject(s, .run, .id, run.id, .attempt, String(run.attempt), .owner, nonEmpty(run.owner))
        s += 1
        t.setObject(s, .step, .id, stepID)
        s += 1

        let body = nonEmpty(request.body)
        var r = t.setContainer(s, .request, .object, count: body == nil ? 8 : 9)
        s += 1
        t.setString(r, .id, request.id)
        t.setString(r + 1, .title, request.title)
        t.setString(r + 2, .responseType, request.responseKind.rawValue)
        t.setBool(r + 3, .isApproval, request.responseKind == .approval)
        var c = t.setContainer(r + 4, .choices, .list, count: request.choices.count)
        for choice in request.choices {
            t.setString(c, nil, choice)
            c += 1
        }
        t.setBool(r + 5, .hasChoices, !request.choices.isEmpty)
        var f = t.setContainer(r + 6, .fields, .list, count: request.fields.count)
        for field in request.fields {
            t.setObject(f, nil, .name, field.name, .value, field.value)
            f += 1
        }
        t.setBool(r + 7, .hasFields, !request.fields.isEmpty)
        r += 8
        if let body { t.setString(r, .body, body) }

        t.setObject(s, .reviewer, .address, reviewer.address, .name, nonEmpty(reviewer.displayName))
        s += 1
        t.setString(s, .marker, MailTemplateContext.replyAboveMarker)
        s += 1
        t.setString(s, .tag, tag)
        s += 1

        let lines = grammarLines
        var width = 0
        for line in lines { width = max(width, line.command.count) }
        width += 4
        var g = t.setContainer(s, .grammar, .list, count: lines.count)
        s += 1
        for line in lines {
            let m = t.setContainer(g, nil, .object, count: 3)
            g += 1
            t.setString(m, .command, line.command)
            t.setString(m + 1, .meaning, line.meaning)
            let pad = width - line.command.count
            t.setString(m + 2, .padded) { out in
                out.append(contentsOf: line.command.utf8)
                out.append(contentsOf: repeatElement(0x20, count: pad))
            }
        }

        var webCount = 0
        for link in links where MailTemplateContext.isWebURL(link.url) { webCount += 1 }
        var l = t.setContainer(s, .links, .list, count: webCount)
        s += 1
        for link in links where MailTemplateContext.isWebURL(link.url) {
            t.setObject(l, nil, .label, link.label, .url, link.url)
            l += 1
        }

        if let deadline {
            let d = t.setContainer(s, .deadline, .object, count: 2)
            s += 1
            t.setString(d, .text) { MailDate.appendHuman(deadline, into: &$0) }
            t.setString(d + 1, .iso) { MailDate.appendISO(deadline, into: &$0) }
        }
        if let decision {
            var count = 1
            let value = nonEmpty(decision.value), reason = nonEmpty(decision.reason), by = nonEmpty(decision.by)
            if value != nil { count += 1 }
            if reason != nil { count += 1 }
            if by != nil { count += 1 }
            if decision.at != nil { count += 1 }
            var d = t.setContainer(s, .decision, .object, count: count)
            s += 1
            t.setString(d, .outcome, decision.outcome)
            d += 1
            if let value { t.setString(d, .value, value); d += 1 }
            if let reason { t.setString(d, .reason, reason); d += 1 }
            if let by { t.setString(d, .by, by); d += 1 }
            if let at = decision.at { t.setString(d, .at) { MailDate.appendHuman(at, into: &$0) } }
        }
        if let clarification {
            t.setObject(s, .clarification, .problem, clarification)
            s += 1
        }
        if let failure {
            t.setObject(s, .failure, .recipient, failure.recipient, .kind, failure.kind, .error, failure.error)
            s += 1
        }
        if let reminderNumber { t.setObject(s, .reminder, .number, String(reminderNumber)) }
        return t
    }

    /// Only web links: a `javascript:` or `data:` URL from job input never reaches an href.
    /// (`url.lowercased().hasPrefix("https://" or "http://")`, on bytes when the start is ASCII.)
    static func isWebURL(_ url: String) -> Bool {
        // With the first 9 bytes ASCII, each of the first 8 is a Character of its own and
        // lower-cases to one byte, so comparing bytes is comparing Characters.
        let https: StaticString = "https://", http: StaticString = "http://"
        var isHTTPS = true, isHTTP = true
        var i = 0
        for byte in url.utf8.prefix(9) {
            guard byte < 0x80 else {
                let lower = url.lowercased()
                return lower.hasPrefix("https://") || lower.hasPrefix("http://")
            }
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if i < 8, lower != https.utf8Start[i] { isHTTPS = false }
            if i < 7, lower != http.utf8Start[i] { isHTTP = false }
            i += 1
        }
        return (isHTTPS && i >= 8) || (isHTTP && i >= 7)
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
        var out = [UInt8]()
        out.reserveCapacity(32)
        MailDate.appendHuman(date, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `2026-11-23T17:00:00Z`.
    static func isoDate(_ date: Date) -> String {
        var out = [UInt8]()
        out.reserveCapacity(24)
        MailDate.appendISO(date, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The shape of a template variable: a value, an object with named members, or a list.
public indirect enum MailVariableShape: Sendable, Hashable {
    case scalar
    case object([String: MailVariableShape])
    case list(MailVariableShape)
}
