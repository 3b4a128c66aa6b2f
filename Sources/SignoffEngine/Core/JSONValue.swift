import Foundation

/// A JSON document held as a value: how a checkpoint keeps payloads whose Swift type is resolved
/// only when a workflow restores it.
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .integer(i); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .integer(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text; throws when it is not valid JSON.
    public init(parsing text: String) throws {
        try self.init(data: Data(text.utf8))
    }

    /// Parses JSON bytes (any top-level value, including a bare string or number).
    public init(data: Data) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// The compact JSON bytes of this value, keys sorted.
    public func data() throws -> Data {
        try JSONCoding.encoder.encode(self)
    }

    /// Decodes this JSON as `T` (dates as milliseconds since 1970, like checkpoints).
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONCoding.decoder.decode(T.self, from: data())
    }

    /// Encodes any value to a `JSONValue`.
    public static func encoding<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONValue(data: JSONCoding.encoder.encode(value))
    }
}

extension JSONValue: WorkflowPayload {
    /// `"JSON"`: lets hosts pass untyped JSON documents between executors.
    public static var typeName: String { "JSON" }
}

/// The JSON conventions of checkpoints and payload bytes: keys sorted, dates as milliseconds
/// since 1970.
enum JSONCoding {
    /// Sorted keys so equal values encode to equal bytes (stable hashes, diffable checkpoints).
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .millisecondsSince1970
        return e
    }
    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return d
    }
}
