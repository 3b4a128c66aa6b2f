import Foundation

/// A workflow whose start executor accepts `[ChatMessage]`, driven like a chat agent.
///
/// `run(_:)` returns assistant messages: the run's outputs (chat messages as they are, text as an
/// assistant message, anything else as its JSON) and, for every pending request, a function call
/// named `request_info` whose call id is the request id and whose arguments are a JSON object
/// `{"request_id", "executor_id", "request_type", "response_type", "data"}`. Sending back a tool
/// message with a function result for that call id resumes the run. A run that fails throws, and
/// the next call starts a new run: a failure never poisons the agent.
public actor WorkflowAgent {
    /// The function name pending requests appear under.
    public static let requestInfoFunctionName = "request_info"

    /// The wrapped workflow.
    public let workflow: Workflow
    private let options: RunOptions
    private var paused: Checkpoint?

    /// Wraps `workflow` (its start executor must handle `[ChatMessage]`).
    public init(workflow: Workflow, options: RunOptions = RunOptions()) {
        self.workflow = workflow
        self.options = options
    }

    /// The ids of the requests the current run waits for (empty when no run is paused).
    public var pendingRequestIDs: [String] { paused?.pendingRequests.map(\.id) ?? [] }

    /// Runs a user prompt.
    public func run(_ text: String) async throws -> [ChatMessage] {
        try await run([ChatMessage(role: .user, text: text)])
    }

    /// Starts a new run with `messages`, or, when they carry function results for pending
    /// requests, resumes the paused run with those results.
    public func run(_ messages: [ChatMessage]) async throws -> [ChatMessage] {
        var results: [(callID: String, result: String)] = []
        for m in messages {
            for c in m.contents { if case .functionResult(let id, let r) = c { results.append((id, r)) } }
        }
        let result: RunResult
        if !results.isEmpty {
            guard let paused else {
                throw WorkflowError(.agentInput, "function results were sent but no run is waiting for input; start a new run with a user message")
            }
            let pendingIDs = Set(paused.pendingRequests.map(\.id))
            var responses: [String: RequestResponse] = [:]
            for (id, r) in results {
                guard pendingIDs.contains(id) else {
                    throw WorkflowError(.agentInput, "no pending request has call id \(id); pending: \(pendingIDs.sorted().joined(separator: ", "))")
                }
                responses[id] = .json(Self.jsonBytes(r))
            }
            result = try await workflow.resume(from: paused, responses: responses, options: options)
        } else {
            let input = messages.filter { $0.role != .tool }
            result = try await workflow.run(input, options: options)
        }
        switch result.status {
        case .failed:
            paused = nil
            throw result.error ?? WorkflowError(.executorFailed, "the workflow run failed")
        case .cancelled:
            paused = nil
            throw CancellationError()
        case .waitingForInput:
            paused = result.checkpoint
        case .idle, .running:
            paused = nil
        }
        return try Self.messages(for: result)
    }

    /// A result string as JSON bytes: JSON stays as it is, plain text becomes a JSON string.
    static func jsonBytes(_ result: String) -> Data {
        let data = Data(result.utf8)
        if (try? JSONValue(data: data)) != nil { return data }
        return (try? JSONCoding.encoder.encode(result)) ?? Data("\"\"".utf8)
    }

    static func messages(for result: RunResult) throws -> [ChatMessage] {
        var out: [ChatMessage] = []
        for o in result.outputs {
            if let m = o.value(as: ChatMessage.self) { out.append(m) }
            else if let ms = o.value(as: [ChatMessage].self) { out.append(contentsOf: ms) }
            else if let s = o.value(as: String.self) { out.append(ChatMessage(role: .assistant, text: s)) }
            else { out.append(ChatMessage(role: .assistant, text: String(decoding: try o.json(), as: UTF8.self))) }
        }
        for r in result.pendingRequests {
            let args: JSONValue = .object([
                "request_id": .string(r.id),
                "executor_id": .string(r.executorID),
                "request_type": .string(r.requestTypeName),
                "response_type": .string(r.responseTypeName),
                "data": try r.payload.jsonValue(),
            ])
            out.append(ChatMessage(role: .assistant, contents: [
                .functionCall(callID: r.id, name: requestInfoFunctionName, arguments: String(decoding: try args.data(), as: UTF8.self)),
            ]))
        }
        return out
    }
}
