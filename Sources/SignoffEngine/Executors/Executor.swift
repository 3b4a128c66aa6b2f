import Foundation

/// A node of a workflow: an id plus typed handlers, declared in `declare(_:)` without macros.
///
/// Write executors as structs when they keep no state, or as actors when they do (one instance
/// per run: register them with a factory, `WorkflowBuilder.addExecutor { MyActor() }`). State that
/// must survive a pause belongs in a `StatefulExecutor` snapshot or in shared state.
///
/// ```swift
/// struct Upper: Executor {
///     let id = "upper"
///     func declare(_ h: inout ExecutorHandlers) {
///         h.on(String.self) { text, ctx in try ctx.send(text.uppercased()) }
///         h.sends(String.self)
///     }
/// }
/// ```
public protocol Executor: Sendable {
    /// The executor's id, unique in its workflow.
    var id: String { get }
    /// Declares handlers, response handlers and the types this executor may send and yield.
    func declare(_ handlers: inout ExecutorHandlers)
}

/// An executor whose own state is saved in every checkpoint and restored with it (opt-in).
public protocol StatefulExecutor: Executor {
    /// The Codable picture of the executor's state.
    associatedtype Snapshot: Codable & Sendable
    /// Returns the current state; called after every checkpointed superstep.
    func snapshot() async throws -> Snapshot
    /// Replaces the state with a snapshot; called on a fresh instance when a run restores.
    func restore(_ snapshot: Snapshot) async throws
}

extension StatefulExecutor {
    func takeSnapshot() async throws -> ExecutorSnapshot {
        .value(try await snapshot())
    }

    func restoreSnapshot(_ box: ExecutorSnapshot) async throws {
        switch box {
        case .value(let v):
            if let typed = v as? Snapshot { try await restore(typed); return }
            try await restore(try JSONValue.encoding(v).decode(Snapshot.self))
        case .json(let json):
            try await restore(try json.decode(Snapshot.self))
        }
    }
}

/// An executor's state snapshot as a checkpoint holds it.
enum ExecutorSnapshot: Sendable, Codable {
    case value(any Encodable & Sendable)
    case json(JSONValue)

    init(from decoder: any Decoder) throws {
        self = .json(try JSONValue(from: decoder))
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .value(let v): try v.encode(to: encoder)
        case .json(let j): try j.encode(to: encoder)
        }
    }
}

/// An executor built at run time from closures, e.g. one per step of a job file.
///
/// ```swift
/// let shout = FunctionExecutor(id: "shout") { h in
///     h.on(String.self) { text, ctx in try ctx.send(text.uppercased()) }
///     h.sends(String.self)
/// }
/// ```
public struct FunctionExecutor: Executor {
    public let id: String
    private let handlers: ExecutorHandlers

    /// Creates an executor whose handlers `configure` declares.
    public init(id: String, _ configure: (inout ExecutorHandlers) -> Void) {
        self.id = id
        var h = ExecutorHandlers()
        configure(&h)
        self.handlers = h
    }

    public func declare(_ handlers: inout ExecutorHandlers) {
        handlers = self.handlers
    }
}
