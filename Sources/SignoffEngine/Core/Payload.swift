import Foundation

/// A payload as the engine holds it: a typed value while in memory, or JSON with its stable type
/// name after a checkpoint was decoded (resolved to a Swift type when a workflow restores it).
enum Payload: Sendable {
    case value(any WorkflowPayload)
    case json(typeName: String, JSONValue)

    var typeName: String {
        switch self {
        case .value(let v): SignoffEngine.typeName(of: v)
        case .json(let name, _): name
        }
    }

    /// The value as `T`, decoding JSON when needed. Nil if the stored type is not `T`.
    func value<T: WorkflowPayload>(as type: T.Type) throws -> T? {
        switch self {
        case .value(let v): return v as? T
        case .json(let name, let json):
            guard name == T.typeName else { return nil }
            return try json.decode(T.self)
        }
    }

    func jsonValue() throws -> JSONValue {
        switch self {
        case .value(let v): try JSONValue.encoding(v)
        case .json(_, let j): j
        }
    }

    func jsonData() throws -> Data { try jsonValue().data() }
}

extension Payload: Codable {
    private enum Keys: String, CodingKey { case type, value }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self = .json(typeName: try c.decode(String.self, forKey: .type), try c.decode(JSONValue.self, forKey: .value))
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .value(let v):
            try c.encode(SignoffEngine.typeName(of: v), forKey: .type)
            try v.encode(to: c.superEncoder(forKey: .value))
        case .json(let name, let json):
            try c.encode(name, forKey: .type)
            try c.encode(json, forKey: .value)
        }
    }
}
