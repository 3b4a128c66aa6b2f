import Foundation
import Yams

/// Parses and validates job files. Every problem is reported with file, line and column, what is
/// wrong, and what to write instead; parsing goes on after a problem so one run lists them all.
public enum JobParser {
    /// Parses the job file at `path`.
    public static func parse(file path: String) throws -> JobDefinition {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RunnerError.notFound("job.unreadable", "cannot read job file \(path): \(error.localizedDescription); check the path")
        }
        return try parse(text: text, file: path)
    }

    /// Parses job text that came from `file` (the name is used in diagnostics and as the job folder).
    public static func parse(text: String, file: String) throws -> JobDefinition {
        let (job, diagnostics) = check(text: text, file: file)
        if let job, diagnostics.isEmpty { return job }
        throw DiagnosticsError(diagnostics)
    }

    /// Parses and returns the job (if readable at all) plus every problem found.
    public static func check(text: String, file: String) -> (JobDefinition?, [Diagnostic]) {
        let reader = YAMLReader(file: file, text: text)
        guard let root = reader.root() else { return (nil, reader.diagnostics) }
        var parser = Parser(reader: reader)
        let job = parser.job(root)
        if let job { parser.validate(job, root: root) }
        return (job, reader.diagnostics)
    }

    /// A string placeholder-bearing field to check once every step is known.
    struct TemplateField {
        var node: Node
        var text: String
        var stepIndex: Int?
        var what: String
    }

    struct Parser {
        let reader: YAMLReader
        var templates: [TemplateField] = []
        var stepNodes: [Int: Node] = [:]
        var needsNodes: [Int: Node] = [:]
        var onRejectNodes: [Int: Node] = [:]

        init(reader: YAMLReader) { self.reader = reader }

        static let namePattern = "job names use letters, digits, `-`, `_` and `.`"

        mutating func job(_ root: Node) -> JobDefinition? {
            guard let top = reader.mapping(root, context: "the job", allowed: JobKeys.job) else { return nil }
            let fileName = ((reader.file as NSString).lastPathComponent as NSString).deletingPathExtension
            var name = fileName
            if let node = top["name"]?.value, let s = reader.nonEmptyString(node, "`name`") {
                if !Self.isIdentifier(s, allowDot: true) {
                    reader.report(node, "job name `\(s)` has characters that are not allowed", hint: Self.namePattern)
                } else if s != fileName {
                    reader.report(node, "the job is named `\(s)` but its file is \(fileName).yaml",
                                  hint: "rename the file to \(s).yaml or write `name: \(fileName)`")
                }
                name = s
            } else if top["name"] == nil {
                reader.report(root, "the job has no `name`", hint: "add `name: \(fileName)` at the top")
            }
            var job = JobDefinition(name: name, steps: [], file: reader.file)
            if let n = top["description"]?.value { job.description = reader.string(n, "`description`") }
            if let n = top["owner"]?.value, let s = reader.nonEmptyString(n, "`owner`") {
                job.owner = address(n, s, "`owner`")
            }
            if let n = top["schedule"]?.value, let s = reader.nonEmptyString(n, "`schedule`") {
                do {
                    _ = try CalendarSpec(parsing: s)
                    job.schedule = s
                } catch let error as CalendarSpec.ParseError {
                    reader.report(n, "`schedule` `\(s)` is not a systemd calendar expression: \(error.problem)",
                                  hint: "write e.g. \"Mon *-*-* 06:00:00\", \"Mon..Fri 09:00\", \"daily\" or \"*-*-01 00:00:00\" (see `man systemd.time`)")
                } catch {}
            }
            if let n = top["input"]?.value {
                if n.mapping == nil {
                    reader.report(n, "`input` must be a mapping of names to default values", hint: "write e.g. `input: { version: \"1.2.3\" }`")
                } else if case .object(let o)? = reader.json(n, "`input`") {
                    for (key, keyNode) in n.mapping!.map({ ($0.key.scalar?.string ?? "", $0.key) })
                    where !Self.isIdentifier(key, allowDot: false) {
                        reader.report(keyNode, "input name `\(key)` has characters that are not allowed",
                                      hint: "use letters, digits, `_` and `-`")
                    }
                    job.input = o
                }
            }
            if let n = top["retry"]?.value { job.retry = retry(n) }
            if let n = top["timeout"]?.value { job.timeout = positiveDuration(n, "`timeout`") }
            if let n = top["template"]?.value { job.template = templateName(n) }
            if let n = top["max_supersteps"]?.value { job.maxSupersteps = reader.int(n, "`max_supersteps`", min: 1) }
            guard let stepsNode = top["steps"]?.value else {
                reader.report(root, "the job has no `steps`", hint: "add `steps:` with at least one `- id: … shell: [...]`")
                return job
            }
            guard let sequence = stepsNode.sequence, !sequence.isEmpty else {
                reader.report(stepsNode, "`steps` must be a non-empty list", hint: "write each step as `- id: NAME` followed by its kind (shell, approval, ask, llm or executor)")
                return job
            }
            var seen: [String: Int] = [:]
            for (index, node) in sequence.enumerated() {
                guard let step = step(node, index: index) else { continue }
                if let first = seen[step.id] {
                    reader.report(node["id"] ?? node, "step id `\(step.id)` is used twice (first by step \(first + 1))",
                                  hint: "give each step its own id, e.g. `\(step.id)-2`")
                    continue
                }
                seen[step.id] = index
                stepNodes[job.steps.count] = node
                job.steps.append(step)
            }
            return job
        }

        mutating func step(_ node: Node, index: Int) -> StepDefinition? {
            let context = "step \(index + 1)"
            guard let m = reader.mapping(node, context: context, allowed: JobKeys.step) else { return nil }
            guard let idNode = m["id"]?.value else {
                reader.report(node, "\(context) has no `id`", hint: "add `id: NAME` (letters, digits, `-`, `_`)")
                return nil
            }
            guard let id = reader.nonEmptyString(idNode, "`id`") else { return nil }
            if !Self.isIdentifier(id, allowDot: false) {
                reader.report(idNode, "step id `\(id)` has characters that are not allowed",
                              hint: "use letters, digits, `-` and `_` (it is used in {{steps.\(id).…}})")
            }
            let kinds = JobKeys.stepKinds.filter { m[$0] != nil }
            if kinds.isEmpty {
                reader.report(node, "step `\(id)` says nothing to do",
                              hint: "add one of: shell: [program, args…], approval: {reviewers: […]}, ask: {…}, llm: {prompt: …}, executor: NAME")
                return nil
            }
            if kinds.count > 1 {
                reader.report(m[kinds[1]]!.key, "step `\(id)` has both `\(kinds[0])` and `\(kinds[1])`",
                              hint: "a step does one thing; split it into two steps")
                return nil
            }
            let kindNode = m[kinds[0]]!.value
            let stepIndex = index
            let kind: StepKind?
            switch kinds[0] {
            case "shell": kind = shell(kindNode, stepIndex: stepIndex)
            case "approval": kind = approval(kindNode, stepIndex: stepIndex)
            case "ask": kind = ask(kindNode, stepIndex: stepIndex)
            case "llm": kind = llm(kindNode, stepIndex: stepIndex)
            default: kind = executor(kindNode, stepIndex: stepIndex)
            }
            guard let kind else { return nil }
            var step = StepDefinition(id: id, kind: kind)
            if let n = m["needs"]?.value {
                step.needs = reader.stringList(n, "`needs`", allowScalar: true)
                needsNodes[index] = n
            }
            if let n = m["timeout"]?.value { step.timeout = positiveDuration(n, "`timeout`") }
            if let n = m["retry"]?.value { step.retry = retry(n) }
            if let n = m["env"]?.value {
                if case .shell = kind {
                    if let env = n.mapping {
                        var out: [String: String] = [:]
                        for (k, v) in env {
                            guard let key = k.scalar?.string, let value = reader.string(v, "`env.\(k.scalar?.string ?? "")`") else { continue }
                            if !key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || key.first?.isNumber == true {
                                reader.report(k, "environment name `\(key)` is not valid", hint: "use letters, digits and `_`, e.g. RELEASE_VERSION")
                            }
                            out[key] = value
                            templates.append(TemplateField(node: v, text: value, stepIndex: stepIndex, what: "`env.\(key)`"))
                        }
                        step.env = out
                    } else {
                        reader.report(n, "`env` must be a mapping of names to values", hint: "write e.g. `env: { LANG: C.UTF-8 }`")
                    }
                } else {
                    reader.report(m["env"]!.key, "`env` only applies to shell steps", hint: "remove it from step `\(id)`")
                }
            }
            if step.retry != nil || step.timeout != nil, kind.isHuman {
                reader.report(m["retry"]?.key ?? m["timeout"]!.key,
                              "`\(step.retry != nil ? "retry" : "timeout")` does not apply to \(kind.keyword) steps",
                              hint: "use `expires_after:` and `on_timeout:` inside `\(kind.keyword):` instead")
            }
            return step
        }

        mutating func shell(_ node: Node, stepIndex: Int) -> StepKind? {
            guard let seq = node.sequence else {
                if let s = node.scalar?.string {
                    let words = s.split(separator: " ").map { "\"\($0)\"" }.joined(separator: ", ")
                    reader.report(node, "`shell` must be a list (an argv), not a shell string",
                                  hint: "write `shell: [\(words)]`")
                } else {
                    reader.report(node, "`shell` must be a list (an argv)", hint: "write `shell: [\"./scripts/build.sh\", \"{{input.version}}\"]`")
                }
                return nil
            }
            if seq.isEmpty {
                reader.report(node, "`shell` is empty", hint: "name the program first, e.g. `shell: [\"./scripts/build.sh\"]`")
                return nil
            }
            var argv: [String] = []
            for item in seq {
                guard let s = reader.string(item, "each argument of `shell`") else { return nil }
                templates.append(TemplateField(node: item, text: s, stepIndex: stepIndex, what: "`shell`"))
                argv.append(s)
            }
            return .shell(ShellStep(argv: argv))
        }

        mutating func policy(_ m: [String: (key: Node, value: Node)], whole: Node, kind: String, stepIndex: Int) -> HumanPolicy? {
            guard let rn = m["reviewers"]?.value else {
                reader.report(whole, "`\(kind)` has no `reviewers`", hint: "add `reviewers: [editor@example.org]`")
                return nil
            }
            guard let reviewers = reader.stringList(rn, "`reviewers`", allowScalar: true) else { return nil }
            if reviewers.isEmpty {
                reader.report(rn, "`reviewers` is empty", hint: "list at least one address")
                return nil
            }
            for r in reviewers { _ = address(rn, r, "reviewer") }
            var p = HumanPolicy(reviewers: reviewers)
            for key in ["subject", "show"] {
                if let n = m[key]?.value, let s = reader.string(n, "`\(key)`") {
                    templates.append(TemplateField(node: n, text: s, stepIndex: stepIndex, what: "`\(key)`"))
                    if key == "subject" { p.subject = s } else { p.show = s }
                }
            }
            if let n = m["template"]?.value { p.template = templateName(n) }
            if let n = m["quorum"]?.value, let s = reader.string(n, "`quorum`") {
                switch s.lowercased() {
                case "any": p.quorum = .any
                case "all": p.quorum = .all
                default:
                    if let count = Int(s), count >= 1, count <= reviewers.count {
                        p.quorum = .count(count)
                    } else {
                        reader.report(n, "`quorum` must be any, all or a number from 1 to \(reviewers.count) (the number of reviewers), not `\(s)`",
                                      hint: "write `quorum: any`, `quorum: all` or e.g. `quorum: \(min(2, reviewers.count))`")
                    }
                }
            }
            if let n = m["reject_on"]?.value, let s = reader.string(n, "`reject_on`") {
                if let v = HumanPolicy.RejectOn(rawValue: s.lowercased()) { p.rejectOn = v } else {
                    reader.report(n, "`reject_on` must be `any` or `quorum`, not `\(s)`", hint: "write `reject_on: any` (one rejection decides) or `reject_on: quorum`")
                }
            }
            if let n = m["expires_after"]?.value { p.expiresAfter = positiveDuration(n, "`expires_after`") }
            if let n = m["on_timeout"]?.value, let s = reader.string(n, "`on_timeout`") {
                if let v = HumanPolicy.TimeoutAction(rawValue: s.lowercased()) { p.onTimeout = v } else {
                    let all = HumanPolicy.TimeoutAction.allCases.map(\.rawValue)
                    reader.report(n, "`on_timeout` must be one of \(all.joined(separator: ", ")), not `\(s)`",
                                  hint: Spelling.suggestion(for: s, in: all).map { "did you mean `\($0)`?" } ?? "write `on_timeout: reject`")
                }
            }
            if let n = m["remind_every"]?.value { p.remindEvery = positiveDuration(n, "`remind_every`") }
            if let n = m["reminders"]?.value, let v = reader.int(n, "`reminders`", min: 0) { p.reminders = v }
            if let n = m["escalate_to"]?.value, let v = reader.stringList(n, "`escalate_to`", allowScalar: true) {
                for a in v { _ = address(n, a, "`escalate_to` address") }
                p.escalateTo = v
            }
            if let n = m["delegates"]?.value, let v = reader.stringList(n, "`delegates`", allowScalar: true) {
                for a in v { _ = address(n, a, "delegate") }
                p.delegates = v
            }
            if let n = m["forbid"]?.value, let v = reader.stringList(n, "`forbid`", allowScalar: true) {
                for a in v where a != "requester" && !a.contains("@") {
                    reader.report(n, "`forbid` entry `\(a)` is neither `requester` nor an address",
                                  hint: "write `forbid: [requester]` or list addresses")
                }
                p.forbid = v
            }
            if p.onTimeout == .escalate, p.escalateTo.isEmpty {
                reader.report(m["on_timeout"]!.value, "`on_timeout: escalate` needs `escalate_to`", hint: "add `escalate_to: [head@example.org]`")
            }
            if p.onTimeout != .reject || p.remindEvery != nil, p.expiresAfter == nil, let key = m["on_timeout"]?.key ?? nil {
                reader.report(key, "`on_timeout` has no effect without `expires_after`", hint: "add e.g. `expires_after: 72h`")
            }
            return p
        }

        mutating func approval(_ node: Node, stepIndex: Int) -> StepKind? {
            guard let m = reader.mapping(node, context: "`approval`", allowed: JobKeys.approval),
                  let p = policy(m, whole: node, kind: "approval", stepIndex: stepIndex) else { return nil }
            var a = ApprovalStep(policy: p)
            if let n = m["on_reject"]?.value, let s = reader.nonEmptyString(n, "`on_reject`") {
                a.onReject = s
                onRejectNodes[stepIndex] = n
            }
            if let n = m["max_rounds"]?.value, let v = reader.int(n, "`max_rounds`", min: 1) { a.maxRounds = v }
            if let n = m["require_reason"]?.value, let v = reader.bool(n, "`require_reason`") { a.requireReason = v }
            if m["max_rounds"] != nil, a.onReject == nil {
                reader.report(m["max_rounds"]!.key, "`max_rounds` has no effect without `on_reject`", hint: "add `on_reject: STEP` or remove `max_rounds`")
            }
            return .approval(a)
        }

        mutating func ask(_ node: Node, stepIndex: Int) -> StepKind? {
            guard let m = reader.mapping(node, context: "`ask`", allowed: JobKeys.ask),
                  let p = policy(m, whole: node, kind: "ask", stepIndex: stepIndex) else { return nil }
            guard let qn = m["question"]?.value, let q = reader.nonEmptyString(qn, "`question`") else {
                if m["question"] == nil { reader.report(node, "`ask` has no `question`", hint: "add `question: \"How many …?\"`") }
                return nil
            }
            templates.append(TemplateField(node: qn, text: q, stepIndex: stepIndex, what: "`question`"))
            var type = AskStep.ValueType.text
            if let n = m["type"]?.value, let s = reader.string(n, "`type`") {
                if let t = AskStep.ValueType(rawValue: s.lowercased()) { type = t } else {
                    let all = AskStep.ValueType.allCases.map(\.rawValue)
                    reader.report(n, "`type` must be one of \(all.joined(separator: ", ")), not `\(s)`",
                                  hint: Spelling.suggestion(for: s, in: all).map { "did you mean `\($0)`?" } ?? "write `type: text`")
                }
            }
            var choices: [String] = []
            if let n = m["choices"]?.value, let v = reader.stringList(n, "`choices`") {
                choices = v
                if type != .choice { reader.report(m["choices"]!.key, "`choices` only applies to `type: choice`", hint: "write `type: choice` or remove `choices`") }
                if Set(v.map { $0.lowercased() }).count != v.count { reader.report(n, "`choices` has duplicates", hint: "list each choice once") }
            }
            if type == .choice, choices.count < 2 {
                reader.report(m["type"]?.value ?? node, "`type: choice` needs `choices` with at least two entries", hint: "add `choices: [small, medium, large]`")
            }
            return .ask(AskStep(policy: p, question: q, type: type, choices: choices))
        }

        mutating func llm(_ node: Node, stepIndex: Int) -> StepKind? {
            guard let m = reader.mapping(node, context: "`llm`", allowed: JobKeys.llm) else { return nil }
            guard let pn = m["prompt"]?.value, let prompt = reader.nonEmptyString(pn, "`prompt`") else {
                if m["prompt"] == nil { reader.report(node, "`llm` has no `prompt`", hint: "add `prompt: \"Summarize: {{steps.build.stdout}}\"`") }
                return nil
            }
            templates.append(TemplateField(node: pn, text: prompt, stepIndex: stepIndex, what: "`prompt`"))
            var s = LLMPromptStep(prompt: prompt)
            if let n = m["system"]?.value, let v = reader.string(n, "`system`") {
                templates.append(TemplateField(node: n, text: v, stepIndex: stepIndex, what: "`system`"))
                s.system = v
            }
            if let n = m["model"]?.value { s.model = reader.nonEmptyString(n, "`model`") }
            if let n = m["temperature"]?.value, let v = reader.double(n, "`temperature`") {
                if v < 0 || v > 2 { reader.report(n, "`temperature` must be between 0 and 2, not \(v)", hint: "write e.g. `temperature: 0.2`") }
                s.temperature = v
            }
            if let n = m["max_tokens"]?.value { s.maxTokens = reader.int(n, "`max_tokens`", min: 1) }
            return .llm(s)
        }

        mutating func executor(_ node: Node, stepIndex: Int) -> StepKind? {
            if let s = node.scalar?.string {
                guard !s.isEmpty else {
                    reader.report(node, "`executor` is empty", hint: "write the name a program registered, e.g. `executor: number-guess`")
                    return nil
                }
                return .executor(ExecutorStep(name: s))
            }
            guard let m = reader.mapping(node, context: "`executor`", allowed: JobKeys.executor) else { return nil }
            guard let nn = m["name"]?.value, let name = reader.nonEmptyString(nn, "`executor.name`") else {
                if m["name"] == nil { reader.report(node, "`executor` has no `name`", hint: "add `name: REGISTERED-NAME`") }
                return nil
            }
            var step = ExecutorStep(name: name)
            if let n = m["with"]?.value {
                if n.mapping == nil {
                    reader.report(n, "`with` must be a mapping", hint: "write e.g. `with: { target: 42 }`")
                } else if case .object(let o)? = reader.json(n, "`with`") {
                    step.with = o
                    collectStrings(n, stepIndex: stepIndex)
                }
            }
            if let n = m["reviewers"]?.value, let v = reader.stringList(n, "`reviewers`", allowScalar: true) {
                for r in v { _ = address(n, r, "reviewer") }
                step.reviewers = v
            }
            if let n = m["subject"]?.value, let s = reader.string(n, "`subject`") {
                templates.append(TemplateField(node: n, text: s, stepIndex: stepIndex, what: "`subject`"))
                step.subject = s
            }
            return .executor(step)
        }

        mutating func collectStrings(_ node: Node, stepIndex: Int) {
            switch node {
            case .scalar(let s): templates.append(TemplateField(node: node, text: s.string, stepIndex: stepIndex, what: "`with`"))
            case .sequence(let seq): for item in seq { collectStrings(item, stepIndex: stepIndex) }
            case .mapping(let m): for (_, v) in m { collectStrings(v, stepIndex: stepIndex) }
            case .alias: break
            }
        }

        func retry(_ node: Node) -> RetryPolicy? {
            guard let m = reader.mapping(node, context: "`retry`", allowed: JobKeys.retry) else { return nil }
            guard let an = m["attempts"]?.value else {
                reader.report(node, "`retry` has no `attempts`", hint: "write `retry: { attempts: 3, backoff: 30s }`")
                return nil
            }
            guard let attempts = reader.int(an, "`attempts`", min: 1) else { return nil }
            var policy = RetryPolicy(attempts: attempts, backoff: 10)
            if let n = m["backoff"]?.value, let v = reader.duration(n, "`backoff`") { policy.backoff = v }
            if let n = m["max_backoff"]?.value, let v = reader.duration(n, "`max_backoff`") { policy.maxBackoff = v }
            return policy
        }

        func positiveDuration(_ node: Node, _ what: String) -> Double? {
            guard let v = reader.duration(node, what) else { return nil }
            if v <= 0 {
                reader.report(node, "\(what) must be longer than zero", hint: "write e.g. 30s, 10m, 72h or 1d")
                return nil
            }
            return v
        }

        func templateName(_ node: Node) -> String? {
            guard let s = reader.nonEmptyString(node, "`template`") else { return nil }
            if !Self.isIdentifier(s, allowDot: false) {
                reader.report(node, "template name `\(s)` has characters that are not allowed",
                              hint: "name a file in templates/ without its extension, e.g. `template: review-request`")
                return nil
            }
            return s
        }

        func address(_ node: Node, _ s: String, _ what: String) -> String? {
            let bare: String
            if let lt = s.lastIndex(of: "<"), let gt = s.lastIndex(of: ">"), lt < gt {
                bare = String(s[s.index(after: lt)..<gt])
            } else {
                bare = s
            }
            let parts = bare.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !bare.contains(" ") else {
                reader.report(node, "\(what) `\(s)` is not an email address", hint: "write it as name@example.org")
                return nil
            }
            return s
        }

        static func isIdentifier(_ s: String, allowDot: Bool) -> Bool {
            !s.isEmpty && s.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" || (allowDot && $0 == ".") }
        }

        // MARK: Cross-step checks

        func validate(_ job: JobDefinition, root: Node) {
            let ids = Set(job.steps.map(\.id))
            // needs: known, not self, no cycles.
            for (index, step) in job.steps.enumerated() {
                guard let needs = step.needs else { continue }
                let node = needsNodes[index] ?? stepNodes[index] ?? root
                for need in needs where !ids.contains(need) || need == step.id {
                    if need == step.id {
                        reader.report(node, "step `\(step.id)` needs itself", hint: "remove `\(need)` from its `needs`")
                    } else {
                        let hint = Spelling.suggestion(for: need, in: Array(ids)).map { "did you mean `\($0)`?" }
                            ?? "steps are: \(job.steps.map(\.id).joined(separator: ", "))"
                        reader.report(node, "step `\(step.id)` needs `\(need)`, which is not a step of this job", hint: hint)
                    }
                }
            }
            if let cycle = findCycle(job) {
                reader.report(stepNodes[job.steps.firstIndex { $0.id == cycle[0] } ?? 0] ?? root,
                              "the steps wait for each other in a circle: \(cycle.joined(separator: " → "))",
                              hint: "remove one of these from `needs`; use an approval's `on_reject` to loop back")
                return
            }
            // on_reject: an earlier step this approval waits for.
            for (index, step) in job.steps.enumerated() {
                guard case .approval(let a) = step.kind, let target = a.onReject else { continue }
                let node = onRejectNodes[index] ?? root
                if !ids.contains(target) {
                    let hint = Spelling.suggestion(for: target, in: Array(ids)).map { "did you mean `\($0)`?" }
                        ?? "name a step this approval waits for: \(job.ancestors(of: step.id).sorted().joined(separator: ", "))"
                    reader.report(node, "`on_reject: \(target)` names no step of this job", hint: hint)
                } else if !job.ancestors(of: step.id).contains(target) {
                    reader.report(node, "`on_reject: \(target)` must name a step that runs before `\(step.id)`",
                                  hint: "pick one of: \(job.ancestors(of: step.id).sorted().joined(separator: ", "))")
                } else if case .approval = job.step(target)?.kind {
                    reader.report(node, "`on_reject: \(target)` names another approval", hint: "send the run back to the step that produces the work")
                } else {
                    // A second round starts at the target: every step on the way back to this approval
                    // must be fed only by steps that run again, or a join would wait forever.
                    let xAncestors = job.ancestors(of: step.id)
                    let between = job.steps.filter { $0.id == step.id || (xAncestors.contains($0.id) && job.ancestors(of: $0.id).contains(target)) }
                    outer: for s in between {
                        for dep in job.dependencies(of: s.id) where dep != target && !job.ancestors(of: dep).contains(target) {
                            reader.report(node, "`on_reject: \(target)` cannot loop back: step `\(s.id)` also waits for `\(dep)`, which does not run again after `\(target)`",
                                          hint: "send the run back to a step both branches wait for, or make `\(dep)` need `\(target)`")
                            break outer
                        }
                    }
                }
            }
            // {{…}} paths.
            for field in templates {
                switch TemplateText.placeholders(in: field.text) {
                case .failure(let error):
                    reader.report(field.node, "\(field.what): \(error.message)", hint: "write placeholders as {{input.NAME}} or {{steps.ID.stdout}}")
                case .success(let placeholders):
                    for p in placeholders {
                        if let problem = pathProblem(p.path, in: job, stepIndex: field.stepIndex) {
                            reader.report(field.node, "\(field.what): `{{\(p.raw)}}` \(problem.0)", hint: problem.1)
                        }
                    }
                }
            }
        }

        /// Why `path` is not valid in the step at `stepIndex`, as (problem, hint); nil when valid.
        func pathProblem(_ path: [String], in job: JobDefinition, stepIndex: Int?) -> (String, String)? {
            let head = path[0]
            switch head {
            case "input":
                guard path.count >= 2 else { return ("needs an input name", "write {{input.NAME}}") }
                if job.input[path[1]] == nil {
                    let names = job.input.keys.sorted()
                    if let guess = Spelling.suggestion(for: path[1], in: names) {
                        return ("names an input the job does not declare", "did you mean {{input.\(guess)}}?")
                    }
                    return ("names an input the job does not declare", "declare it with a default under `input:` (e.g. `input: { \(path[1]): \"\" }`)")
                }
                return nil
            case "feedback":
                return path.count == 1 ? nil : ("has no fields", "write {{feedback}}")
            case "run":
                if path.count == 2, JobKeys.runFields.contains(path[1]) { return nil }
                return ("is not a run field", "use one of: \(JobKeys.runFields.map { "{{run.\($0)}}" }.joined(separator: ", "))")
            case "job":
                if path.count == 2, JobKeys.jobFields.contains(path[1]) { return nil }
                return ("is not a job field", "use one of: \(JobKeys.jobFields.map { "{{job.\($0)}}" }.joined(separator: ", "))")
            case "steps":
                guard path.count >= 3 else { return ("needs a step id and a field", "write e.g. {{steps.ID.stdout}}") }
                let id = path[1]
                guard let target = job.step(id) else {
                    let hint = Spelling.suggestion(for: id, in: job.steps.map(\.id)).map { "did you mean {{steps.\($0).\(path[2])}}?" }
                        ?? "steps are: \(job.steps.map(\.id).joined(separator: ", "))"
                    return ("names no step of this job", hint)
                }
                if let stepIndex {
                    let me = job.steps[stepIndex].id
                    if id == me { return ("refers to the step itself", "a step can only use the results of steps that ran before it") }
                    if !job.ancestors(of: me).contains(id) {
                        return ("refers to step `\(id)`, which does not run before `\(me)`",
                                "add `\(id)` to `needs` of `\(me)` or move `\(me)` after it")
                    }
                }
                let fields = JobKeys.stepFields[target.kind.keyword] ?? []
                if !fields.contains(path[2]) {
                    return ("is not a field of a \(target.kind.keyword) step",
                            "use one of: \(fields.map { "{{steps.\(id).\($0)}}" }.joined(separator: ", "))")
                }
                if path.count > 3, path[2] != "json" {
                    return ("goes deeper than `\(path[2])`", "only `json` has sub-fields, e.g. {{steps.\(id).json.name}}")
                }
                return nil
            default:
                let roots = ["input", "steps", "feedback", "run", "job"]
                let hint = Spelling.suggestion(for: head, in: roots).map { "did you mean `\($0)`?" }
                    ?? "paths start with input., steps., run., job. or are {{feedback}}"
                return ("is not a known path", hint)
            }
        }

        func findCycle(_ job: JobDefinition) -> [String]? {
            var state: [String: Int] = [:]  // 1 visiting, 2 done
            var stack: [String] = []
            func visit(_ id: String) -> [String]? {
                if state[id] == 2 { return nil }
                if state[id] == 1 {
                    let start = stack.firstIndex(of: id) ?? 0
                    return Array(stack[start...]) + [id]
                }
                state[id] = 1
                stack.append(id)
                for dep in job.dependencies(of: id) where job.step(dep) != nil {
                    if let c = visit(dep) { return c }
                }
                stack.removeLast()
                state[id] = 2
                return nil
            }
            for step in job.steps { if let c = visit(step.id) { return c.reversed() } }
            return nil
        }
    }
}
