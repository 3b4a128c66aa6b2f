import Foundation

/// A value that can travel through a workflow: a message, an output, request or response data,
/// or shared state.
///
/// `typeName` is the stable name written into checkpoints. Choose it once and keep it: it is how a
/// checkpoint written by one build of the program is read by the next. It is never derived from
/// Swift's runtime type names.
public protocol WorkflowPayload: Codable, Sendable {
    /// The stable name of this type in checkpoints and events, e.g. `"NumberSignal"`.
    static var typeName: String { get }
}

extension String: WorkflowPayload { public static var typeName: String { "String" } }
extension Int: WorkflowPayload { public static var typeName: String { "Int" } }
extension Bool: WorkflowPayload { public static var typeName: String { "Bool" } }
extension Double: WorkflowPayload { public static var typeName: String { "Double" } }
extension ChatMessage: WorkflowPayload { public static var typeName: String { "ChatMessage" } }

extension Array: WorkflowPayload where Element: WorkflowPayload {
    /// `"[Element]"`, e.g. `"[ChatMessage]"`.
    public static var typeName: String { "[\(Element.typeName)]" }
}

extension Dictionary: WorkflowPayload where Key == String, Value: WorkflowPayload {
    /// `"[String:Value]"`, e.g. `"[String:Int]"`.
    public static var typeName: String { "[String:\(Value.typeName)]" }
}

/// Lets the engine build a typed list for a fan-in target from buffered elements.
protocol PayloadList: Sendable {
    static var elementType: any WorkflowPayload.Type { get }
    static func makeList(_ elements: [any WorkflowPayload]) -> (any WorkflowPayload)?
}

extension Array: PayloadList where Element: WorkflowPayload {
    static var elementType: any WorkflowPayload.Type { Element.self }
    static func makeList(_ elements: [any WorkflowPayload]) -> (any WorkflowPayload)? {
        var list: [Element] = []
        list.reserveCapacity(elements.count)
        for e in elements {
            guard let typed = e as? Element else { return nil }
            list.append(typed)
        }
        return list
    }
}

extension WorkflowPayload {
    static func decodePayload(from json: JSONValue) throws -> any WorkflowPayload {
        try json.decode(Self.self)
    }
    var payloadTypeName: String { Self.typeName }
}

/// The dynamic stable type name of a payload value.
func typeName(of value: any WorkflowPayload) -> String { type(of: value).typeName }
