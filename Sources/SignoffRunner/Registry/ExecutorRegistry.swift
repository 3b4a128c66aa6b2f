import Foundation
import SignoffEngine

/// What a registered executor receives when its `executor:` step runs.
public struct ExecutorInvocation: Sendable {
    /// The step id.
    public var stepID: String
    /// The job.
    public var job: JobDefinition
    /// The run.
    public var run: RunInfo
    /// The job's input (defaults merged with `--input`).
    public var input: [String: JobValue]
    /// The step's `with:` arguments, placeholders rendered.
    public var arguments: [String: JobValue]
    /// Results of the steps before it.
    public var results: [String: StepResult]
    /// The feedback of a rejection that sent the run back here, if any.
    public var feedback: String?
}

/// An executor a Swift program registers by name, used by `executor: NAME` steps.
public enum RegisteredExecutor: Sendable {
    /// A function: runs to completion and returns its output (text or JSON).
    case function(@Sendable (ExecutorInvocation) async throws -> JobValue)
    /// A whole engine workflow run inside the step. Its human requests become the step's requests
    /// (mailed to `reviewers:` of the step); its outputs become the step's output.
    ///
    /// `input` turns the invocation into the workflow's start message.
    case workflow(make: @Sendable () throws -> Workflow, input: @Sendable (ExecutorInvocation) throws -> any WorkflowPayload)
}

/// The executors a program registered by name. Pass it to `SignoffCLI.main(registry:)` (or to the
/// runner) to make `executor:` steps find them.
public struct ExecutorRegistry: Sendable {
    /// Registered executors by name.
    public private(set) var executors: [String: RegisteredExecutor] = [:]
    /// One line per name, for `signoff jobs list`.
    public private(set) var summaries: [String: String] = [:]

    public init() {}

    /// Registers a function executor.
    public mutating func register(_ name: String, summary: String = "",
                                  _ body: @escaping @Sendable (ExecutorInvocation) async throws -> JobValue) {
        executors[name] = .function(body)
        summaries[name] = summary
    }

    /// Registers a workflow run inside an `executor:` step.
    public mutating func register(_ name: String, summary: String = "", workflow make: @escaping @Sendable () throws -> Workflow,
                                  input: @escaping @Sendable (ExecutorInvocation) throws -> any WorkflowPayload) {
        executors[name] = .workflow(make: make, input: input)
        summaries[name] = summary
    }

    /// Every registered name, sorted.
    public var names: [String] { executors.keys.sorted() }
}
