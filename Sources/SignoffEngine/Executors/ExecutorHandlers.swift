import Foundation

/// The handlers and declared types of one executor, filled in by `Executor.declare(_:)`.
///
/// Dispatch is deterministic: a message goes to the handler whose input type is exactly the
/// message's type; failing that, to the first declared handler whose type accepts it (a superclass
/// handler, or a protocol handler from `on(conformingTo:typeCheck:_:)`).
public struct ExecutorHandlers: Sendable {
    struct Handler: Sendable {
        let typeName: String
        let typeID: ObjectIdentifier
        /// Set when the input type is a payload type (so checkpoints can decode it by name).
        let payloadType: (any WorkflowPayload.Type)?
        let acceptsType: @Sendable (Any.Type) -> Bool
        let acceptsValue: @Sendable (any WorkflowPayload) -> Bool
        let body: @Sendable (any WorkflowPayload, WorkflowContext) async throws -> Void
    }

    struct ResponseHandler: Sendable {
        let requestType: any WorkflowPayload.Type
        let responseType: any WorkflowPayload.Type
        let body: @Sendable (any WorkflowPayload, any WorkflowPayload, WorkflowContext) async throws -> Void
        var requestTypeName: String { requestType.typeName }
        var responseTypeName: String { responseType.typeName }
    }

    struct CancelHandler: Sendable {
        let requestType: any WorkflowPayload.Type
        let body: @Sendable (any WorkflowPayload, String, WorkflowContext) async throws -> Void
    }

    struct DeclaredType: Sendable {
        let type: any WorkflowPayload.Type
        let matches: @Sendable (any WorkflowPayload) -> Bool
        var typeID: ObjectIdentifier { ObjectIdentifier(type) }
    }

    var handlers: [Handler] = []
    var responseHandlers: [ResponseHandler] = []
    var cancelHandlers: [CancelHandler] = []
    var sendTypes: [DeclaredType] = []
    var yieldTypes: [DeclaredType] = []

    public init() {}

    /// Handles messages of type `T` (and of its subclasses, when `T` is a class).
    public mutating func on<T: WorkflowPayload>(
        _ type: T.Type, _ body: @escaping @Sendable (T, WorkflowContext) async throws -> Void
    ) {
        handlers.append(Handler(
            typeName: T.typeName, typeID: ObjectIdentifier(T.self), payloadType: T.self,
            acceptsType: { $0 == T.self || $0 is T.Type },
            acceptsValue: { $0 is T },
            body: { value, ctx in try await body(value as! T, ctx) }))
    }

    /// Handles every message whose type conforms to a protocol `P` (pass `(any P).self`).
    ///
    /// Swift cannot test a metatype against a protocol held in a generic parameter, so the build
    /// validation asks `typeCheck`, e.g. `{ $0 is any Shape.Type }`.
    public mutating func on<P>(
        conformingTo type: P.Type, named name: String,
        typeCheck: @escaping @Sendable (Any.Type) -> Bool,
        _ body: @escaping @Sendable (P, WorkflowContext) async throws -> Void
    ) {
        handlers.append(Handler(
            typeName: name, typeID: ObjectIdentifier(P.self), payloadType: nil,
            acceptsType: typeCheck,
            acceptsValue: { $0 is P },
            body: { value, ctx in try await body(value as! P, ctx) }))
    }

    /// Handles the response to a request this executor issued with `requestInfo(_:responseType:)`:
    /// the original request data, the response, and a context. Keyed by (request type, response type).
    public mutating func onResponse<Request: WorkflowPayload, Response: WorkflowPayload>(
        to request: Request.Type, _ response: Response.Type,
        _ body: @escaping @Sendable (Request, Response, WorkflowContext) async throws -> Void
    ) {
        responseHandlers.append(ResponseHandler(
            requestType: Request.self, responseType: Response.self,
            body: { req, resp, ctx in try await body(req as! Request, resp as! Response, ctx) }))
    }

    /// Is told, in the next superstep, that a pending request of type `Request` was cancelled by the
    /// host. Without such a handler a cancelled request fails the run.
    public mutating func onRequestCancelled<Request: WorkflowPayload>(
        _ request: Request.Type, _ body: @escaping @Sendable (Request, _ requestID: String, WorkflowContext) async throws -> Void
    ) {
        cancelHandlers.append(CancelHandler(
            requestType: Request.self, body: { req, id, ctx in try await body(req as! Request, id, ctx) }))
    }

    /// Declares that this executor may send messages of type `T` (subclasses included).
    public mutating func sends<T: WorkflowPayload>(_ type: T.Type) {
        sendTypes.append(DeclaredType(type: T.self, matches: { $0 is T }))
    }

    /// Declares that this executor may yield workflow outputs of type `T` (subclasses included).
    public mutating func yields<T: WorkflowPayload>(_ type: T.Type) {
        yieldTypes.append(DeclaredType(type: T.self, matches: { $0 is T }))
    }

    /// The handler for a value: exact type first, then the first declared handler accepting it.
    func handlerIndex(for value: any WorkflowPayload) -> Int? {
        let id = ObjectIdentifier(type(of: value))
        if let i = handlers.firstIndex(where: { $0.typeID == id }) { return i }
        return handlers.firstIndex(where: { $0.acceptsValue(value) })
    }

    /// Whether some handler accepts values of `type` (build-time check).
    func accepts(type: Any.Type) -> Bool {
        handlers.contains { $0.acceptsType(type) }
    }

    func responseHandler(requestTypeName: String, responseTypeName: String) -> Int? {
        responseHandlers.firstIndex { $0.requestTypeName == requestTypeName && $0.responseTypeName == responseTypeName }
    }
}
