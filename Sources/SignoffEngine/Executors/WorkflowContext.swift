import Foundation
import Synchronization

/// What a handler can do: send messages, yield outputs, issue requests, read and write shared
/// state, and add its own events.
///
/// Sends, outputs and requests are checked at the call: a type the executor did not declare, or a
/// request without a matching response handler, throws before anything is recorded.
public final class WorkflowContext: @unchecked Sendable {
    // @unchecked: a context is used by exactly one handler invocation at a time (one executor per
    // task per superstep); the superstep join orders every access by the engine.

    /// The id of the executor this context belongs to.
    public let executorID: String
    let executorIndex: Int
    let handlers: ExecutorHandlers
    let sink: (@Sendable (WorkflowEvent) -> Void)?
    let ledger: RequestLedger

    var committed: [String: Payload] = [:]
    var writes: [String: Payload?] = [:]
    var outbox: [(targetID: String?, value: any WorkflowPayload)] = []
    var outputs: [WorkflowOutput] = []
    var requests: [PendingRequest] = []
    private var lastSendType: ObjectIdentifier?

    init(executorID: String, executorIndex: Int, handlers: ExecutorHandlers,
         sink: (@Sendable (WorkflowEvent) -> Void)?, ledger: RequestLedger) {
        self.executorID = executorID
        self.executorIndex = executorIndex
        self.handlers = handlers
        self.sink = sink
        self.ledger = ledger
    }

    /// Sends a message along this executor's edges (or only to `targetID`, which needs an edge from
    /// this executor). It is delivered in the next superstep.
    public func send<T: WorkflowPayload>(_ message: T, to targetID: String? = nil) throws {
        let id = ObjectIdentifier(type(of: message))
        if id != lastSendType {
            guard handlers.sendTypes.contains(where: { $0.typeID == id || $0.matches(message) }) else {
                throw WorkflowError(.undeclaredSend,
                                    "executor '\(executorID)' sent a \(typeName(of: message)) but declares sends [\(handlers.sendTypes.map { $0.type.typeName }.joined(separator: ", "))]; add sends(\(typeName(of: message)).self) to its declaration")
            }
            lastSendType = id
        }
        outbox.append((targetID, message))
    }

    /// Yields a workflow output; the output event is emitted at once.
    public func yieldOutput<T: WorkflowPayload>(_ value: T) throws {
        let id = ObjectIdentifier(type(of: value))
        guard handlers.yieldTypes.contains(where: { $0.typeID == id || $0.matches(value) }) else {
            throw WorkflowError(.undeclaredYield,
                                "executor '\(executorID)' yielded a \(typeName(of: value)) but declares yields [\(handlers.yieldTypes.map { $0.type.typeName }.joined(separator: ", "))]; add yields(\(typeName(of: value)).self) to its declaration")
        }
        let output = WorkflowOutput(executorID: executorID, payload: .value(value))
        outputs.append(output)
        sink?(.output(output))
    }

    /// Adds an executor event (delivered as `WorkflowEvent.custom`).
    public func addEvent(_ name: String) {
        sink?(.custom(CustomEvent(executorID: executorID, name: name, payload: nil)))
    }

    /// Adds an executor event carrying a value (delivered as `WorkflowEvent.custom`).
    public func addEvent<T: WorkflowPayload>(_ name: String, _ value: T) {
        sink?(.custom(CustomEvent(executorID: executorID, name: name, payload: .value(value))))
    }

    /// Records a pending request for data from outside the workflow and returns its id.
    ///
    /// The response goes to this executor's `onResponse(to: Request.self, Response.self)` handler,
    /// with the original request data. Throws, recording nothing, when there is no such handler or
    /// when `requestID` is already used in this run.
    @discardableResult
    public func requestInfo<Request: WorkflowPayload, Response: WorkflowPayload>(
        _ data: Request, responseType: Response.Type, requestID: String? = nil, deadline: Date? = nil
    ) throws -> String {
        let requestName = typeName(of: data)
        guard handlers.responseHandler(requestTypeName: requestName, responseTypeName: Response.typeName) != nil else {
            throw WorkflowError(.noResponseHandler,
                                "executor '\(executorID)' asked for a \(Response.typeName) response to a \(requestName) request but has no onResponse(to: \(requestName).self, \(Response.typeName).self) handler; the response would be lost, so the request was not recorded")
        }
        let id = requestID ?? UUID().uuidString.lowercased()
        guard ledger.claim(id) else {
            throw WorkflowError(.duplicateRequestID,
                                "executor '\(executorID)' issued request id '\(id)', which this run already used; request ids must be unique within a run")
        }
        requests.append(PendingRequest(id: id, executorID: executorID, requestTypeName: requestName,
                                       responseTypeName: Response.typeName, deadline: deadline,
                                       payload: .value(data)))
        return id
    }

    /// Reads shared state: the value committed at the start of this superstep, or this executor's
    /// own write since. Throws when the key holds another type.
    public func state<T: WorkflowPayload>(_ key: String, as type: T.Type = T.self) throws -> T? {
        let p: Payload?
        if let w = writes[key] { p = w } else { p = committed[key] }
        guard let p else { return nil }
        guard let v = try p.value(as: T.self) else {
            throw WorkflowError(.stateTypeMismatch,
                                "shared state '\(key)' holds a \(p.typeName), not a \(T.typeName)")
        }
        return v
    }

    /// Writes shared state; other executors see it from the next superstep on, and a failed
    /// superstep discards it. When two executors write one key in the same superstep, the write of
    /// the executor added later to the builder wins.
    public func setState<T: WorkflowPayload>(_ key: String, _ value: T) {
        writes[key] = .some(.value(value))
    }

    /// Removes a shared state key (committed at the superstep boundary).
    public func removeState(_ key: String) {
        writes[key] = .some(nil)
    }

    func reset(committed: [String: Payload]) {
        self.committed = committed
        if !writes.isEmpty { writes.removeAll() }
        if !outbox.isEmpty { outbox.removeAll(keepingCapacity: true) }
        if !outputs.isEmpty { outputs.removeAll() }
        if !requests.isEmpty { requests.removeAll() }
    }

    /// Runs this executor's deliveries one at a time, in order.
    func process(_ deliveries: [Delivery]) async throws {
        for d in deliveries {
            switch d {
            case .message(let value, let h):
                sink?(.executorInvoked(executorID: executorID, messageType: typeName(of: value)))
                try await invoke { try await handlers.handlers[h].body(value, self) }
            case .response(let request, let data, let response, let h):
                sink?(.executorInvoked(executorID: executorID, messageType: request.responseTypeName))
                try await invoke { try await handlers.responseHandlers[h].body(data, response, self) }
            case .cancellation(let request, let data, let h):
                sink?(.executorInvoked(executorID: executorID, messageType: request.requestTypeName))
                try await invoke { try await handlers.cancelHandlers[h].body(data, request.id, self) }
            }
            sink?(.executorCompleted(executorID: executorID))
        }
    }

    private func invoke(_ body: () async throws -> Void) async throws {
        do { try await body() } catch {
            if !(error is CancellationError && Task.isCancelled) {
                sink?(.executorFailed(executorID: executorID, error: String(describing: error)))
            }
            throw ExecutorFailure(executorID: executorID, underlying: error)
        }
    }
}

/// A handler threw.
struct ExecutorFailure: Error {
    let executorID: String
    let underlying: any Error
}

/// One thing an executor handles in a superstep.
enum Delivery: Sendable {
    case message(any WorkflowPayload, handler: Int)
    case response(PendingRequest, data: any WorkflowPayload, response: any WorkflowPayload, handler: Int)
    case cancellation(PendingRequest, data: any WorkflowPayload, handler: Int)
}

/// Request ids used in a run (pending, answered, or issued now), shared by concurrent executors.
final class RequestLedger: Sendable {
    private let ids: Mutex<Set<String>>
    init(_ initial: Set<String>) { ids = Mutex(initial) }
    func claim(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }
    func release(_ id: String) { _ = ids.withLock { $0.remove(id) } }
}
