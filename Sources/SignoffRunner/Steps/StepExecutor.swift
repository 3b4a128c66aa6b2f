import Foundation
import SignoffEngine
import SignoffLLM

/// The engine executor of one job step. It receives the flow state (or, where several steps join,
/// the list of their states), does the step's work, records its result in the state and passes the
/// state on to the steps that wait for it; the last steps yield it as the run's output.
struct StepExecutor: Executor {
    let job: JobDefinition
    let step: StepDefinition
    let dependents: [String]
    let services: StepServices
    let acceptsList: Bool

    var id: String { step.id }

    func declare(_ h: inout ExecutorHandlers) {
        h.on(FlowState.self) { state, ctx in try await self.handle(state, ctx) }
        if acceptsList {
            h.on([FlowState].self) { states, ctx in try await self.handle(FlowState.merge(states), ctx) }
        }
        if step.kind.isHuman || isWorkflowExecutor {
            h.onResponse(to: HumanRequest.self, HumanResponse.self) { request, response, ctx in
                try await self.answered(request, response, ctx)
            }
        }
        h.sends(FlowState.self)
        h.yields(FlowState.self)
    }

    var isWorkflowExecutor: Bool {
        if case .executor(let e) = step.kind, case .workflow? = services.registry.executors[e.name] { return true }
        return false
    }

    // MARK: Dispatch

    func handle(_ incoming: FlowState, _ ctx: WorkflowContext) async throws {
        var adjusted = incoming
        if let current = services.currentRun { adjusted.run = current }
        let state = adjusted
        switch step.kind {
        case .shell(let shell):
            var s = state
            s.results[step.id] = try await withRetry(state) { attempt in try await runShell(shell, state, attempt: attempt) }
            try forward(s, ctx)
        case .llm(let llm):
            var s = state
            s.results[step.id] = try await withRetry(state) { _ in try await withStepTimeout { try await runLLM(llm, state) } }
            try forward(s, ctx)
        case .executor(let e):
            switch services.registry.executors[e.name] {
            case .function(let body)?:
                var s = state
                s.results[step.id] = try await withRetry(state) { _ in
                    let value = try await withStepTimeout { try await body(invocation(e, state)) }
                    var r = StepResult(kind: "executor")
                    r.output = value.description
                    r.json = value
                    return r
                }
                try forward(s, ctx)
            case .workflow(let make, let input)?:
                let workflow = try make()
                let result = try await workflow.run(try input(invocation(e, state)))
                try await continueInner(workflow, result, state: state, ctx)
            case nil:
                throw RunnerError.usage("job.unknown_executor", "executor `\(e.name)` of step `\(step.id)` is not registered in this program")
            }
        case .approval(let a):
            let round = (state.rounds[step.id] ?? 0) + 1
            let request = HumanRequest(
                kind: .approval, stepID: step.id,
                title: state.render(a.policy.subject ?? "Approval needed: \(job.name) / \(step.id)", job: job),
                body: state.render(a.policy.show ?? defaultShow(state), job: job),
                reviewers: a.policy.reviewers, requireReason: a.requireReason, round: round,
                template: a.policy.template ?? job.template, state: state)
            try ctx.requestInfo(request, responseType: HumanResponse.self)
        case .ask(let ask):
            let request = HumanRequest(
                kind: .value, stepID: step.id,
                title: state.render(ask.policy.subject ?? ask.question, job: job),
                body: state.render(ask.policy.show.map { "\(ask.question)\n\n\($0)" } ?? ask.question, job: job),
                valueType: ask.type, choices: ask.choices, reviewers: ask.policy.reviewers,
                template: ask.policy.template ?? job.template, state: state)
            try ctx.requestInfo(request, responseType: HumanResponse.self)
        }
    }

    func answered(_ request: HumanRequest, _ response: HumanResponse, _ ctx: WorkflowContext) async throws {
        guard var state = request.state else {
            throw RunnerError("flow.lost_state", "request of step `\(step.id)` carries no run state; rerun the run")
        }
        if let current = services.currentRun { state.run = current }
        if let inner = request.inner {
            try await resumeInner(inner, response, state: state, ctx)
            return
        }
        if response.decision == "fail" {
            throw RunnerError("request.expired", "step `\(step.id)`: nobody answered before the deadline and the job says `on_timeout: fail`")
        }
        var result = StepResult(kind: step.kind.keyword)
        result.by = response.by
        switch step.kind {
        case .approval(let a):
            result.decision = response.decision
            if response.decision == "approve" {
                result.comment = response.reason
                state.results[step.id] = result
                state.feedback = nil
                try forward(state, ctx)
                return
            }
            guard response.decision == "reject" else {
                throw RunnerError("flow.bad_response", "step `\(step.id)` expected approve or reject, got `\(response.decision)`")
            }
            result.reason = response.reason
            state.results[step.id] = result
            let used = state.rounds[step.id] ?? 0
            if let target = a.onReject, used + 1 < a.maxRounds {
                state.rounds[step.id] = used + 1
                state.feedback = response.reason ?? "rejected without a reason"
                if case .llm? = job.step(target)?.kind, let draft = state.results[target]?.text {
                    state.llmRounds[target, default: []].append(LLMStepPrompt.Round(draft: draft, feedback: [state.feedback ?? ""]))
                }
                try ctx.send(state, to: target)
            } else {
                state.rejectedBy = step.id
                try ctx.yieldOutput(state)
            }
        case .ask:
            result.value = response.value
            state.results[step.id] = result
            try forward(state, ctx)
        default:
            throw RunnerError("flow.bad_response", "step `\(step.id)` does not take answers")
        }
    }

    func forward(_ state: FlowState, _ ctx: WorkflowContext) throws {
        if dependents.isEmpty {
            try ctx.yieldOutput(state)
        } else {
            for target in dependents { try ctx.send(state, to: target) }
        }
    }

    func defaultShow(_ state: FlowState) -> String {
        let previous = job.ancestors(of: step.id)
        let last = job.steps.last { previous.contains($0.id) }
        guard let last, let r = state.results[last.id] else { return "Please approve step \(step.id) of job \(job.name)." }
        return r.text ?? r.stdout ?? r.output ?? "Please approve step \(step.id) of job \(job.name)."
    }

    func invocation(_ e: ExecutorStep, _ state: FlowState) -> ExecutorInvocation {
        func render(_ v: JobValue) -> JobValue {
            switch v {
            case .string(let s): return .string(state.render(s, job: job))
            case .array(let a): return .array(a.map(render))
            case .object(let o): return .object(o.mapValues(render))
            default: return v
            }
        }
        return ExecutorInvocation(stepID: step.id, job: job, run: state.run, input: state.input,
                                  arguments: e.with.mapValues(render), results: state.results, feedback: state.feedback)
    }

    // MARK: Retry

    func withRetry(_ state: FlowState, _ body: (Int) async throws -> StepResult) async throws -> StepResult {
        let policy = step.retry ?? job.retry ?? RetryPolicy(attempts: 1, backoff: 0)
        var attempt = 1
        while true {
            do {
                var result = try await body(attempt)
                result.attempts = attempt
                return result
            } catch {
                if Task.isCancelled || attempt >= policy.attempts { 
                    if policy.attempts > 1 {
                        throw RunnerError("step.failed", "\(error) (gave up after \(attempt) attempts)")
                    }
                    throw error
                }
                attempt += 1
                try await services.sleep(policy.delay(beforeAttempt: attempt))
            }
        }
    }

    /// Runs `body`, cancelling it after the step's (or job's) `timeout:`.
    func withStepTimeout<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let seconds = step.timeout ?? job.timeout else { return try await body() }
        let stepID = step.id
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                throw RunnerError("step.timeout", "step `\(stepID)` ran longer than its timeout of \(DurationText.format(seconds)) and was cancelled; raise `timeout:` or make it faster")
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }

    // MARK: Shell

    func runShell(_ shell: ShellStep, _ state: FlowState, attempt: Int) async throws -> StepResult {
        let argv = shell.argv.map { state.render($0, job: job) }
        var env = services.environment
        env["SIGNOFF_RUN_ID"] = state.run.id
        env["SIGNOFF_JOB"] = job.name
        env["SIGNOFF_STEP"] = step.id
        env["SIGNOFF_ATTEMPT"] = String(state.run.attempt)
        env["SIGNOFF_STEP_ATTEMPT"] = String(attempt)
        env["SIGNOFF_REQUESTED_BY"] = state.run.requestedBy ?? ""
        env["SIGNOFF_FEEDBACK"] = state.feedback ?? ""
        for (key, value) in state.input {
            let name = key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
            env["SIGNOFF_INPUT_" + String(name)] = value.description
        }
        for (key, value) in step.env ?? [:] { env[key] = state.render(value, job: job) }
        let timeout = step.timeout ?? job.timeout
        let outcome = try await ProcessRunner.run(argv: argv, directory: job.folder, environment: env,
                                                  timeout: timeout, cap: services.outputCap)
        var result = StepResult(kind: "shell")
        result.stdout = String(decoding: outcome.stdout, as: UTF8.self)
        result.stderr = String(decoding: outcome.stderr, as: UTF8.self)
        result.exitCode = Int(outcome.exitCode)
        if let json = JobValue.parse(outcome.stdout) {
            if case .object = json { result.json = json }
            if case .array = json { result.json = json }
        }
        let tail = result.stderr.map { s -> String in
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            return t.isEmpty ? "" : "; its stderr ends with: \(t.suffix(400))"
        } ?? ""
        if outcome.timedOut {
            throw RunnerError("step.timeout", "step `\(step.id)`: `\(argv[0])` ran longer than its timeout of \(DurationText.format(timeout ?? 0)) and was killed with its process group\(tail); raise `timeout:` or make the program faster")
        }
        if let signal = outcome.signal {
            throw RunnerError("step.killed", "step `\(step.id)`: `\(argv[0])` was killed by signal \(signal)\(tail)")
        }
        if outcome.exitCode != 0 {
            throw RunnerError("step.exit", "step `\(step.id)`: `\(argv[0])` exited with status \(outcome.exitCode)\(tail); fix the program or its input, then `signoff rerun RUN`")
        }
        return result
    }

    // MARK: LLM

    func runLLM(_ llm: LLMPromptStep, _ state: FlowState) async throws -> StepResult {
        guard let client = services.chatClient else {
            throw RunnerError("llm.not_configured", "step `\(step.id)` calls a model but signoff.yaml has no usable `llm:` section; add e.g. `llm: { base_url: \"http://127.0.0.1:11434/v1\", model: llama3 }`")
        }
        let system = llm.system.map { state.render($0, job: job) }
        let prompt = state.render(llm.prompt, job: job)
        let output = try await LLMStep.generate(client: client, system: system, prompt: prompt,
                                                rounds: state.llmRounds[step.id] ?? [],
                                                options: ChatOptions(model: llm.model, temperature: llm.temperature,
                                                                     maxTokens: llm.maxTokens))
        let response = ChatResponse(messages: [ChatMessage(role: .assistant, text: output.text)], usage: output.usage, model: output.model)
        var result = StepResult(kind: "llm")
        result.text = response.text
        result.model = response.model ?? llm.model
        result.promptTokens = response.usage?.promptTokens
        result.completionTokens = response.usage?.completionTokens
        if let json = JobValue.parse(Data(response.text.utf8)), case .object = json { result.json = json }
        return result
    }

    // MARK: Hosted workflows

    func continueInner(_ workflow: Workflow, _ result: RunResult, state: FlowState, _ ctx: WorkflowContext) async throws {
        switch result.status {
        case .waitingForInput:
            guard let pending = result.pendingRequests.first, case .executor(let e) = step.kind else {
                throw RunnerError("step.failed", "step `\(step.id)`: the hosted workflow waits but shows no request")
            }
            let data = (try? pending.dataJSON) ?? Data()
            let text: String
            if let s = try? JSONDecoder().decode(String.self, from: data) {
                text = s
            } else if case .object(let o)? = JobValue.parse(data), o.count == 1, case .string(let s)? = o.values.first {
                text = s  // a prompt type with one text field, e.g. {"text": "Enter your name:"}
            } else {
                text = String(decoding: data, as: UTF8.self)
            }
            let kind: HumanRequest.Kind = pending.responseTypeName == Bool.typeName ? .approval : .value
            let valueType: AskStep.ValueType? = kind == .approval ? nil
                : ([Int.typeName, Double.typeName].contains(pending.responseTypeName) ? .number : .text)
            let request = HumanRequest(
                kind: kind, stepID: step.id,
                title: state.render(e.subject ?? "\(job.name) / \(step.id): \(text.prefix(60))", job: job),
                body: text, valueType: valueType, reviewers: e.reviewers, requireReason: false,
                template: job.template, state: state,
                inner: InnerRequest(requestID: pending.id, responseTypeName: pending.responseTypeName,
                                    checkpoint: try result.checkpoint.encoded()))
            try ctx.requestInfo(request, responseType: HumanResponse.self)
        case .failed, .cancelled:
            throw RunnerError("step.failed", "step `\(step.id)`: the workflow of executor failed: \(result.error.map { $0.message } ?? "cancelled")")
        default:
            var s = state
            var r = StepResult(kind: "executor")
            let outputs = result.outputs.compactMap { try? $0.json() }.compactMap { JobValue.parse($0) }
            let value: JobValue = outputs.count == 1 ? outputs[0] : .array(outputs)
            r.output = value.description
            r.json = value
            s.results[step.id] = r
            try forward(s, ctx)
        }
    }

    func resumeInner(_ inner: InnerRequest, _ response: HumanResponse, state: FlowState, _ ctx: WorkflowContext) async throws {
        guard case .executor(let e) = step.kind, case .workflow(let make, _)? = services.registry.executors[e.name] else {
            throw RunnerError("flow.bad_response", "step `\(step.id)` has no hosted workflow to resume")
        }
        let workflow = try make()
        let checkpoint = try Checkpoint.decode(from: inner.checkpoint)
        let bytes: Data
        switch inner.responseTypeName {
        case Bool.typeName: bytes = Data((response.decision == "approve" ? "true" : "false").utf8)
        case Int.typeName, Double.typeName:
            bytes = Data((response.value?.description ?? response.reason ?? "0").utf8)
        default:
            bytes = (try? JSONEncoder().encode(response.value?.description ?? response.reason ?? "")) ?? Data("\"\"".utf8)
        }
        let result = try await workflow.resume(from: checkpoint, responses: [inner.requestID: .json(bytes)])
        try await continueInner(workflow, result, state: state, ctx)
    }
}
