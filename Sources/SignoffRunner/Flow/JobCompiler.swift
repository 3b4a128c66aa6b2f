import Foundation
import SignoffEngine

/// What step executors need from the host at run time.
public struct StepServices: Sendable {
    /// Executors registered by name.
    public var registry: ExecutorRegistry
    /// The chat client of `llm` steps (nil: llm steps fail with a message saying to configure `llm:`).
    public var chatClient: (any ChatClient)?
    /// The environment shell steps inherit (before the run's own variables).
    public var environment: [String: String]
    /// Output cap per stream of a shell step.
    public var outputCap: Int
    /// Sleeps between retries (injected so tests need not wait).
    public var sleep: @Sendable (Double) async throws -> Void
    /// The run being executed; steps see it as `{{run.…}}` even when the flow state came from an
    /// earlier attempt's checkpoint (`rerun --from-checkpoint`).
    public var currentRun: RunInfo?

    public init(registry: ExecutorRegistry = ExecutorRegistry(), chatClient: (any ChatClient)? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                outputCap: Int = ProcessRunner.defaultCap,
                sleep: @escaping @Sendable (Double) async throws -> Void = { try await Task.sleep(nanoseconds: UInt64($0 * 1e9)) }) {
        self.registry = registry
        self.chatClient = chatClient
        self.environment = environment
        self.outputCap = outputCap
        self.sleep = sleep
    }
}

/// Turns a job file into an engine workflow: one executor per step, edges from the order or
/// `needs:` (fan-out where a step has several dependents, fan-in where it waits for several),
/// and an edge back from each approval with `on_reject:` to the step it names.
public enum JobCompiler {
    /// The id of the executor that receives the run's input and starts the steps without dependencies.
    public static let startID = "_start"

    /// Builds the workflow of `job`.
    public static func compile(_ job: JobDefinition, services: StepServices) throws -> Workflow {
        for step in job.steps {
            if case .executor(let e) = step.kind, services.registry.executors[e.name] == nil {
                let known = services.registry.names
                var hint = known.isEmpty ? "this program registers no executors" : "registered: \(known.joined(separator: ", "))"
                if let guess = Spelling.suggestion(for: e.name, in: known) { hint = "did you mean `\(guess)`?" }
                throw RunnerError.usage("job.unknown_executor",
                                        "\(job.file): step `\(step.id)` uses executor `\(e.name)`, which is not registered; \(hint)")
            }
        }
        for step in job.steps {
            if case .executor(let e) = step.kind, case .workflow? = services.registry.executors[e.name],
               e.reviewers.isEmpty, job.owner == nil {
                throw RunnerError.usage("job.no_reviewers",
                                        "\(job.file): step `\(step.id)` runs the workflow `\(e.name)`, which asks people questions, but names nobody to ask; add `reviewers: [someone@example.org]` under `executor:`")
            }
        }
        let builder = WorkflowBuilder(name: "job:\(job.name)")
        builder.addExecutor(FunctionExecutor(id: startID) { h in
            h.on(FlowState.self) { state, ctx in try ctx.send(state) }
            h.sends(FlowState.self)
        })
        builder.setStart(startID)
        let fanInTargets = Set(job.steps.filter { job.dependencies(of: $0.id).count > 1 }.map(\.id))
        for step in job.steps {
            let dependents = job.dependents(of: step.id)
            let executor = StepExecutor(job: job, step: step, dependents: dependents, services: services,
                                        acceptsList: fanInTargets.contains(step.id))
            builder.addExecutor(executor)
            let deps = job.dependencies(of: step.id)
            switch deps.count {
            case 0: builder.addEdge(startID, step.id)
            case 1: builder.addEdge(deps[0], step.id)
            default: builder.addFanIn(deps, to: step.id)
            }
            if case .approval(let a) = step.kind, let target = a.onReject {
                builder.addEdge(step.id, target)
            }
        }
        if let limit = job.maxSupersteps { builder.maxSupersteps(limit) } else {
            // Each round of an on_reject loop walks the steps again.
            let rounds = job.steps.compactMap { s -> Int? in if case .approval(let a) = s.kind { return a.maxRounds } else { return nil } }.max() ?? 1
            builder.maxSupersteps(max(100, (job.steps.count + 2) * (rounds + 1)))
        }
        do {
            return try builder.build()
        } catch let error as WorkflowError {
            throw RunnerError("job.compile", "\(job.file): the job's steps do not form a valid workflow: \(error.message); check `needs:` and `on_reject:`")
        }
    }
}
