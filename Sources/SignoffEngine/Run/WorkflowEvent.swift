import Foundation

/// Where a workflow run stands, as the engine sees it (the store's `RunStatus` is the queue's view).
public enum WorkflowRunState: String, Sendable, Codable, Hashable {
    /// Supersteps are running.
    case running
    /// Nothing in flight, requests pending: resume with responses.
    case waitingForInput
    /// Nothing in flight, nothing pending: the run is complete.
    case idle
    /// An executor threw, the superstep limit was hit, or a request was cancelled without a handler.
    case failed
    /// The task running the workflow was cancelled; the last checkpoint is still valid.
    case cancelled
}

/// One thing that happened in a run, in the order it happened.
///
/// Framework events are cases of this enum; executors add their own only as `.custom`, so they
/// cannot forge framework events.
public enum WorkflowEvent: Sendable {
    case runStarted(runID: String, workflow: String)
    case status(WorkflowRunState)
    case superstepStarted(Int)
    case superstepCompleted(Int)
    case executorInvoked(executorID: String, messageType: String)
    case executorCompleted(executorID: String)
    case executorFailed(executorID: String, error: String)
    /// Emitted at once when an executor calls `yieldOutput`.
    case output(WorkflowOutput)
    /// A pending request: a new one, or one re-emitted on restore with its original id.
    case request(PendingRequest)
    case messageUndelivered(UndeliveredMessage)
    case warning(String)
    case checkpointSaved(checkpointID: String, superstep: Int)
    /// The per-call superstep limit was reached; the run then fails.
    case superstepsExhausted(limit: Int)
    /// Why the run failed; followed by `.status(.failed)`.
    case failed(WorkflowError)
    /// An event an executor added with `ctx.addEvent`.
    case custom(CustomEvent)
}

/// A value an executor yielded as a workflow output.
public struct WorkflowOutput: Sendable, Codable {
    /// The executor that yielded it.
    public let executorID: String
    let payload: Payload

    init(executorID: String, payload: Payload) {
        self.executorID = executorID
        self.payload = payload
    }

    /// The stable type name of the output value.
    public var typeName: String { payload.typeName }

    /// The value as `T`, or nil when the output is of another type.
    public func value<T: WorkflowPayload>(as type: T.Type = T.self) -> T? {
        try? payload.value(as: T.self)
    }

    /// The output as JSON bytes.
    public func json() throws -> Data { try payload.jsonData() }
}

/// An event added by an executor.
public struct CustomEvent: Sendable, Codable {
    /// The executor that added it.
    public let executorID: String
    /// The name the executor gave it.
    public let name: String
    let payload: Payload?

    /// The attached value as `T`, if any.
    public func value<T: WorkflowPayload>(as type: T.Type = T.self) -> T? {
        payload.flatMap { try? $0.value(as: T.self) }
    }
}

/// A message no edge could deliver, and why.
public struct UndeliveredMessage: Sendable, Codable, Hashable {
    /// The sender (nil for the run's input or a response).
    public let sourceID: String?
    /// The explicit target the sender named, if any.
    public let targetID: String?
    /// The stable type name of the message.
    public let typeName: String
    /// Why no edge delivered it.
    public let reason: String
}

/// A request waiting for a response from outside the workflow (a human, another system).
public struct PendingRequest: Sendable, Codable {
    /// The request id; responses are keyed by it.
    public let id: String
    /// The executor that issued the request and will handle the response.
    public let executorID: String
    /// The stable type name of the request data.
    public let requestTypeName: String
    /// The stable type name the response must have.
    public let responseTypeName: String
    /// A deadline the host enforces (the engine only records it).
    public let deadline: Date?
    let payload: Payload

    init(id: String, executorID: String, requestTypeName: String, responseTypeName: String,
         deadline: Date?, payload: Payload) {
        self.id = id
        self.executorID = executorID
        self.requestTypeName = requestTypeName
        self.responseTypeName = responseTypeName
        self.deadline = deadline
        self.payload = payload
    }

    /// The request data as JSON bytes (dates as milliseconds since 1970).
    public var dataJSON: Data {
        get throws { try payload.jsonData() }
    }

    /// The request data as `T`; throws when the request holds another type.
    public func data<T: WorkflowPayload>(as type: T.Type = T.self) throws -> T {
        guard let v = try payload.value(as: T.self) else {
            throw WorkflowError(.wrongResponseType,
                                "request \(id) carries \(requestTypeName), not \(T.typeName)")
        }
        return v
    }
}

/// A response to a pending request, as a typed value or as JSON bytes (the engine knows the type
/// the request expects and decodes them).
public struct RequestResponse: Sendable {
    enum Storage: Sendable {
        case value(any WorkflowPayload)
        case json(Data)
    }
    let storage: Storage

    /// A typed response.
    public static func value<T: WorkflowPayload>(_ value: T) -> RequestResponse {
        RequestResponse(storage: .value(value))
    }

    /// A response as JSON bytes, decoded as the request's response type.
    public static func json(_ data: Data) -> RequestResponse {
        RequestResponse(storage: .json(data))
    }
}
