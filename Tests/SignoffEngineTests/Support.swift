import Foundation
import SignoffEngine
import Synchronization

/// Collects events from any thread.
final class EventRecorder: Sendable {
    private let events = Mutex<[WorkflowEvent]>([])
    var all: [WorkflowEvent] { events.withLock { $0 } }
    var sink: @Sendable (WorkflowEvent) -> Void { { e in self.events.withLock { $0.append(e) } } }
    var count: Int { events.withLock { $0.count } }
}

func collect(_ stream: AsyncThrowingStream<WorkflowEvent, any Error>) async throws -> [WorkflowEvent] {
    var out: [WorkflowEvent] = []
    for try await e in stream { out.append(e) }
    return out
}

/// A compact label per event, for asserting timelines.
func label(_ e: WorkflowEvent) -> String {
    switch e {
    case .runStarted: "started"
    case .status(let s): "status:\(s.rawValue)"
    case .superstepStarted(let n): "superstep:\(n)"
    case .superstepCompleted(let n): "completed:\(n)"
    case .executorInvoked(let id, _): "invoked:\(id)"
    case .executorCompleted(let id): "done:\(id)"
    case .executorFailed(let id, _): "failedExecutor:\(id)"
    case .output(let o): "output:\(o.value(as: String.self) ?? o.typeName)"
    case .request(let r): "request:\(r.id)"
    case .messageUndelivered(let u): "undelivered:\(u.typeName)"
    case .warning(let w): "warning:\(w)"
    case .checkpointSaved(_, let n): "checkpoint:\(n)"
    case .superstepsExhausted(let n): "exhausted:\(n)"
    case .failed(let e): "failed:\(e.code)"
    case .custom(let c): "custom:\(c.name)"
    }
}

func statuses(_ events: [WorkflowEvent]) -> [WorkflowRunState] {
    events.compactMap { if case .status(let s) = $0 { s } else { nil } }
}

func requests(_ events: [WorkflowEvent]) -> [PendingRequest] {
    events.compactMap { if case .request(let r) = $0 { r } else { nil } }
}

/// A chat client that answers from a script and records what it was asked.
actor ScriptedChatClient: ChatClient {
    private var replies: [String]
    private(set) var calls: [[ChatMessage]] = []

    init(replies: [String]) { self.replies = replies }

    func complete(_ messages: [ChatMessage], options: ChatOptions) async throws -> ChatResponse {
        calls.append(messages)
        guard !replies.isEmpty else { throw WorkflowError(.executorFailed, "the script has no more replies") }
        return ChatResponse(messages: [ChatMessage(role: .assistant, text: replies.removeFirst())])
    }
}

/// Records values from concurrent handlers.
final class Probe<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ v: T) { items.withLock { $0.append(v) } }
    var all: [T] { items.withLock { $0 } }
}

/// A test payload.
struct Tick: WorkflowPayload, Hashable {
    static let typeName = "Tick"
    var source: String
    var n: Int
}

/// A two-question executor: one handler issues an Int request and a Bool request.
struct TwoQuestions: Executor {
    let id = "two"
    func declare(_ h: inout ExecutorHandlers) {
        h.on(String.self) { topic, ctx in
            try ctx.requestInfo("How many \(topic)?", responseType: Int.self, requestID: "count")
            try ctx.requestInfo("Ship \(topic)?", responseType: Bool.self, requestID: "ship")
        }
        h.onResponse(to: String.self, Int.self) { q, n, ctx in try ctx.yieldOutput("\(q) \(n)") }
        h.onResponse(to: String.self, Bool.self) { q, b, ctx in try ctx.yieldOutput("\(q) \(b)") }
        h.yields(String.self)
    }
}

func twoQuestionsWorkflow() throws -> Workflow {
    try WorkflowBuilder(name: "two-questions").addExecutor(TwoQuestions()).setStart("two").build()
}

/// Sends the next integer to itself until `limit`, then yields it (nil: loops forever).
struct Counter: Executor {
    let id: String
    let limit: Int?
    var delay: Duration? = nil
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { [limit, delay] n, ctx in
            if let delay { try await Task.sleep(for: delay) }
            if let limit, n >= limit { try ctx.yieldOutput(n) } else { try ctx.send(n + 1) }
        }
        h.sends(Int.self)
        h.yields(Int.self)
    }
}

func counterWorkflow(limit: Int?, max: Int = 100, delay: Duration? = nil) throws -> Workflow {
    try WorkflowBuilder(name: "counter")
        .addExecutor(Counter(id: "loop", limit: limit, delay: delay))
        .addEdge("loop", "loop").setStart("loop").maxSupersteps(max).build()
}

/// Forwards any String it gets.
struct Relay: Executor {
    let id: String
    func declare(_ h: inout ExecutorHandlers) {
        h.on(String.self) { s, ctx in try ctx.send(s) }
        h.sends(String.self)
    }
}

/// Yields what it receives, prefixed with its id.
struct Sink: Executor {
    let id: String
    func declare(_ h: inout ExecutorHandlers) {
        h.on(String.self) { [id] s, ctx in try ctx.yieldOutput("\(id):\(s)") }
        h.on(Int.self) { [id] n, ctx in try ctx.yieldOutput("\(id):\(n)") }
        h.yields(String.self)
    }
}
