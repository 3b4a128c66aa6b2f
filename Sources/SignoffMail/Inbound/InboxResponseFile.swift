import Foundation

/// A response file from the inbox folder (`inbox/new/*.json`), read with the strict schema of
/// EMAIL.md: `{"request", "token", "decision": "approve|reject|value", "reason", "value",
/// "responder"}`; unknown or duplicate keys are rejected; UTF-8; at most 64 KiB.
public struct InboxResponseFile: Sendable, Hashable {
    public var request: String
    public var token: String
    /// `approve`, `reject` or `value`.
    public var decision: String
    public var reason: String?
    /// The raw JSON text of `value` (a number keeps its exact digits).
    public var valueJSON: String?
    public var responder: EmailAddress

    /// The largest file accepted.
    public static let maxBytes = 64 * 1024
    static let allowedKeys: Set<String> = ["request", "token", "decision", "reason", "value", "responder"]

    /// A schema violation, naming the problem and the fix.
    public struct SchemaError: Error, Sendable, Hashable, CustomStringConvertible {
        public var code: String
        public var message: String
        public var description: String { "\(code): \(message)" }
    }

    /// Parses and validates a response file.
    public static func parse(_ bytes: [UInt8]) throws(SchemaError) -> InboxResponseFile {
        if bytes.count > maxBytes { throw SchemaError(code: "too_large", message: "the response file is \(bytes.count) bytes; the limit is \(maxBytes)") }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw SchemaError(code: "unparseable", message: "the response file is not valid UTF-8")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(bytes), options: [])) is [String: Any] else {
            throw SchemaError(code: "unparseable", message: "the response file is not a JSON object")
        }
        let members = try topLevelMembers(Array(text.utf8))
        var seen: [String: String] = [:]
        for (key, raw) in members {
            guard allowedKeys.contains(key) else {
                throw SchemaError(code: "unparseable", message: "unknown key \"\(key)\"; allowed keys are \(allowedKeys.sorted().joined(separator: ", "))")
            }
            guard seen[key] == nil else { throw SchemaError(code: "unparseable", message: "the key \"\(key)\" appears twice") }
            seen[key] = raw
        }
        func string(_ key: String, required: Bool) throws(SchemaError) -> String? {
            guard let raw = seen[key] else {
                if required { throw SchemaError(code: "unparseable", message: "the key \"\(key)\" is missing") }
                return nil
            }
            guard let s = try? JSONDecoder().decode(String.self, from: Data(raw.utf8)) else {
                throw SchemaError(code: "unparseable", message: "\"\(key)\" must be a string")
            }
            return s
        }
        let request = try string("request", required: true)!
        let token = try string("token", required: true)!
        let decision = try string("decision", required: true)!
        let reason = try string("reason", required: false)
        let responderText = try string("responder", required: true)!
        guard ["approve", "reject", "value"].contains(decision) else {
            throw SchemaError(code: "unparseable", message: "\"decision\" must be approve, reject or value (found \"\(decision)\")")
        }
        if decision == "value", seen["value"] == nil {
            throw SchemaError(code: "unparseable", message: "a \"value\" decision needs the key \"value\"")
        }
        if decision != "value", seen["value"] != nil {
            throw SchemaError(code: "unparseable", message: "\"value\" is only allowed with \"decision\": \"value\"")
        }
        let responder = EmailAddress.parseList(responderText).first ?? EmailAddress(responderText)
        guard responder.isValid else { throw SchemaError(code: "unparseable", message: "\"responder\" must be an email address") }
        return InboxResponseFile(request: request, token: token, decision: decision, reason: reason,
                                 valueJSON: seen["value"], responder: responder)
    }

    /// The members of the top-level object as (decoded key, raw value text), in order,
    /// duplicates included (JSONSerialization would silently keep one).
    static func topLevelMembers(_ u: [UInt8]) throws(SchemaError) -> [(String, String)] {
        var i = 0
        func ws() { while i < u.count, [0x20, 0x09, 0x0A, 0x0D].contains(u[i]) { i += 1 } }
        func bad(_ m: String) -> SchemaError { SchemaError(code: "unparseable", message: m) }
        func skipString() throws(SchemaError) {
            guard i < u.count, u[i] == 0x22 else { throw bad("expected a string") }
            i += 1
            while i < u.count, u[i] != 0x22 { if u[i] == 0x5C { i += 1 }; i += 1 }
            guard i < u.count else { throw bad("unterminated string") }
            i += 1
        }
        func skipValue() throws(SchemaError) {
            ws()
            guard i < u.count else { throw bad("missing value") }
            switch u[i] {
            case 0x22: try skipString()
            case 0x7B, 0x5B:
                var depth = 0
                repeat {
                    if u[i] == 0x22 { try skipString(); continue }
                    if u[i] == 0x7B || u[i] == 0x5B { depth += 1 }
                    if u[i] == 0x7D || u[i] == 0x5D { depth -= 1 }
                    i += 1
                } while depth > 0 && i < u.count
            default:
                while i < u.count, ![0x2C, 0x7D, 0x20, 0x09, 0x0A, 0x0D].contains(u[i]) { i += 1 }
            }
        }
        var members: [(String, String)] = []
        ws()
        guard i < u.count, u[i] == 0x7B else { throw bad("expected a JSON object") }
        i += 1
        ws()
        if i < u.count, u[i] == 0x7D { return [] }
        while i < u.count {
            ws()
            let keyStart = i
            try skipString()
            let rawKey = String(decoding: u[keyStart..<i], as: UTF8.self)
            guard let key = try? JSONDecoder().decode(String.self, from: Data(rawKey.utf8)) else { throw bad("bad key") }
            ws()
            guard i < u.count, u[i] == 0x3A else { throw bad("expected ':' after a key") }
            i += 1
            ws()
            let valueStart = i
            try skipValue()
            members.append((key, String(decoding: u[valueStart..<i], as: UTF8.self)))
            ws()
            guard i < u.count else { break }
            if u[i] == 0x2C { i += 1; continue }
            if u[i] == 0x7D { break }
            throw bad("expected ',' or '}'")
        }
        return members
    }
}
