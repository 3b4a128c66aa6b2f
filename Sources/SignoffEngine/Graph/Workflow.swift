import Foundation

/// An immutable, validated workflow definition. One definition serves many runs, in parallel and
/// in many processes: every run has its own state and its own executor instances.
public struct Workflow: Sendable {
    /// The workflow's name (recorded in checkpoints).
    public let name: String
    let executors: [ExecutorDefinition]
    let index: [String: Int]
    let start: Int
    let outEdges: [[OutEdge]]
    let fanIns: [FanInGroup]
    let registry: [String: any WorkflowPayload.Type]
    /// The graph's shape, as checkpoints record it.
    public let graph: GraphDescription
    /// The graph hash checkpoints carry.
    public let graphHash: String
    /// The default superstep limit of one `run`/`resume` call.
    public let maxSupersteps: Int
    let checkpointStorage: (any CheckpointStorage)?

    init(name: String, executors: [ExecutorDefinition], index: [String: Int], start: Int,
         outEdges: [[OutEdge]], fanIns: [FanInGroup], registry: [String: any WorkflowPayload.Type],
         graph: GraphDescription, maxSupersteps: Int, checkpointStorage: (any CheckpointStorage)?) {
        self.name = name
        self.executors = executors
        self.index = index
        self.start = start
        self.outEdges = outEdges
        self.fanIns = fanIns
        self.registry = registry
        self.graph = graph
        self.graphHash = graph.hash
        self.maxSupersteps = maxSupersteps
        self.checkpointStorage = checkpointStorage
    }

    /// The executor ids, in declaration order.
    public var executorIDs: [String] { executors.map(\.id) }
    /// The start executor's id.
    public var startExecutorID: String { executors[start].id }

    /// Runs the workflow on `input` until nothing is in flight, a request is pending, the run fails
    /// or the task is cancelled.
    ///
    /// Throws only when the start executor does not accept the input; a run that fails returns a
    /// result with status `.failed` and its `error`.
    public func run<Input: WorkflowPayload>(_ input: Input, options: RunOptions = RunOptions()) async throws -> RunResult {
        let engine = try RunEngine(workflow: self, options: options, sink: nil)
        try await engine.prepareStart(input)
        return await engine.drive()
    }

    /// `run(_:options:)` calling `onEvent` with every event as it happens (a structured alternative
    /// to the stream: the run is this call, so cancelling the calling task cancels the run and
    /// `onEvent` still sees the final `.status(.cancelled)`).
    public func run<Input: WorkflowPayload>(_ input: Input, options: RunOptions = RunOptions(),
                                            onEvent: @escaping @Sendable (WorkflowEvent) -> Void) async throws -> RunResult {
        let engine = try RunEngine(workflow: self, options: options, sink: onEvent)
        try await engine.prepareStart(input)
        return await engine.drive()
    }

    /// `resume(from:responses:cancelling:options:)` calling `onEvent` with every event.
    public func resume(from checkpoint: Checkpoint, responses: [String: RequestResponse] = [:],
                       cancelling: [String] = [], options: RunOptions = RunOptions(),
                       onEvent: @escaping @Sendable (WorkflowEvent) -> Void) async throws -> RunResult {
        let engine = try RunEngine(workflow: self, options: options.with(runID: checkpoint.runID), sink: onEvent)
        try await engine.prepareResume(checkpoint, responses: responses, cancelling: cancelling)
        return await engine.drive()
    }

    /// Runs the workflow on `input`, streaming every event. The stream ends after the final status
    /// event; it throws if the input is not accepted. Stopping the iteration cancels the run.
    public func runStreaming<Input: WorkflowPayload>(_ input: Input, options: RunOptions = RunOptions())
        -> AsyncThrowingStream<WorkflowEvent, any Error> {
        stream(options: options) { engine in try await engine.prepareStart(input) }
    }

    /// Continues a run from a checkpoint (from this process, or decoded from bytes in another one),
    /// delivering `responses` (keyed by request id) in the next superstep.
    ///
    /// Every response is validated first, all or nothing: an unknown id, an already answered id or
    /// a value of the wrong type throws and changes nothing. A checkpoint from a changed graph, or
    /// holding a type name this workflow does not know, throws a clear error. Pending requests not
    /// answered in this call are re-emitted first, with their original ids; no empty superstep runs.
    /// `cancelling` cancels pending requests: their executor's `onRequestCancelled` handler is told,
    /// or, without one, the run fails.
    public func resume(from checkpoint: Checkpoint, responses: [String: RequestResponse] = [:],
                       cancelling: [String] = [], options: RunOptions = RunOptions()) async throws -> RunResult {
        let engine = try RunEngine(workflow: self, options: options.with(runID: checkpoint.runID), sink: nil)
        try await engine.prepareResume(checkpoint, responses: responses, cancelling: cancelling)
        return await engine.drive()
    }

    /// `resume(from:responses:cancelling:options:)` with typed response values.
    public func resume(from checkpoint: Checkpoint, responses: [String: any WorkflowPayload],
                       options: RunOptions = RunOptions()) async throws -> RunResult {
        try await resume(from: checkpoint, responses: responses.mapValues { RequestResponse(storage: .value($0)) },
                         options: options)
    }

    /// The streaming form of `resume(from:responses:cancelling:options:)`.
    public func resumeStreaming(from checkpoint: Checkpoint, responses: [String: RequestResponse] = [:],
                                cancelling: [String] = [], options: RunOptions = RunOptions())
        -> AsyncThrowingStream<WorkflowEvent, any Error> {
        stream(options: options.with(runID: checkpoint.runID)) { engine in
            try await engine.prepareResume(checkpoint, responses: responses, cancelling: cancelling)
        }
    }

    /// Checks that a checkpoint can be restored onto this workflow (same name and graph, known
    /// version), without running anything.
    public func validate(_ checkpoint: Checkpoint) throws {
        guard checkpoint.version == Checkpoint.formatVersion else {
            throw WorkflowError(.unsupportedCheckpointVersion,
                                "checkpoint \(checkpoint.id) has format version \(checkpoint.version); this build reads version \(Checkpoint.formatVersion)")
        }
        guard checkpoint.workflowName == name else {
            throw WorkflowError(.workflowMismatch,
                                "checkpoint \(checkpoint.id) belongs to workflow '\(checkpoint.workflowName)', not '\(name)'")
        }
        if checkpoint.graphHash != graphHash {
            let changes = graph.changes(since: checkpoint.graph)
            throw WorkflowError(.graphChanged,
                                "workflow '\(name)' changed since checkpoint \(checkpoint.id) was taken: \(changes.isEmpty ? "graph hash differs" : changes.joined(separator: "; ")); restore it with the workflow definition it was taken with")
        }
    }

    private func stream(options: RunOptions, prepare: @escaping @Sendable (RunEngine) async throws -> Void)
        -> AsyncThrowingStream<WorkflowEvent, any Error> {
        AsyncThrowingStream { continuation in
            // The stream needs a producer; this task is the run, cancelled when the consumer stops.
            let task = Task {
                do {
                    let engine = try RunEngine(workflow: self, options: options, sink: { continuation.yield($0) })
                    try await prepare(engine)
                    _ = await engine.drive()
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Per-call options of `run` and `resume`.
public struct RunOptions: Sendable {
    /// The run's id (a fresh UUID when nil; a resume keeps the checkpoint's run id).
    public var runID: String?
    /// This call's superstep limit; nil uses the workflow's (100 unless the builder set one).
    public var maxSupersteps: Int?
    /// Where to save checkpoints; nil uses the workflow's storage, if any.
    public var checkpointStorage: (any CheckpointStorage)?

    /// Options for one call; every field defaults to the workflow's setting.
    public init(runID: String? = nil, maxSupersteps: Int? = nil, checkpointStorage: (any CheckpointStorage)? = nil) {
        self.runID = runID
        self.maxSupersteps = maxSupersteps
        self.checkpointStorage = checkpointStorage
    }

    func with(runID: String) -> RunOptions {
        var o = self
        o.runID = runID
        return o
    }
}

/// The outcome of one `run` or `resume` call.
public struct RunResult: Sendable {
    /// The run's id (stable across pauses and resumes).
    public let runID: String
    /// `.idle` (complete), `.waitingForInput`, `.failed` or `.cancelled`.
    public let status: WorkflowRunState
    /// Outputs yielded during this call, in order.
    public let outputs: [WorkflowOutput]
    /// Requests waiting for a response.
    public let pendingRequests: [PendingRequest]
    /// Why the run failed, when it did.
    public let error: WorkflowError?
    /// The last valid checkpoint: resume from it (or encode and store it).
    public let checkpoint: Checkpoint
    /// Supersteps run in this call.
    public let supersteps: Int

    /// The outputs of type `T`.
    public func outputs<T: WorkflowPayload>(as type: T.Type) -> [T] {
        outputs.compactMap { $0.value(as: T.self) }
    }
}
