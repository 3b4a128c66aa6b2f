import Foundation
import Yams

/// Reads a YAML document through Yams' node API, collecting `Diagnostic`s with line and column
/// instead of stopping at the first problem.
///
/// Not Sendable: Yams nodes hold anchors by reference; a reader lives inside one parse call.
final class YAMLReader {
    let file: String
    let text: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    /// Composes the document; a syntax error becomes a diagnostic and nil.
    func root() -> Node? {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                report(nil, "the file is empty", hint: "write a YAML mapping")
                return nil
            }
            return node
        } catch let error as YamlError {
            switch error {
            case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
                 let .composer(context, problem, mark, _):
                let extra = context.map { " \($0.text)" } ?? ""
                diagnostics.append(Diagnostic(file: file, line: mark.line, column: mark.column,
                                              message: "YAML syntax error: \(problem)\(extra)",
                                              hint: "check indentation and quoting; strings containing ': ' or starting with '{' need quotes"))
            case let .duplicatedKeysInMapping(duplicates, context):
                diagnostics.append(Diagnostic(file: file, line: context.mark.line, column: context.mark.column,
                                              message: "duplicate key \(duplicates.joined(separator: ", "))",
                                              hint: "each key may appear once in a mapping; remove or merge the repeats"))
            default:
                report(nil, "cannot read YAML: \(error)", hint: "save the file as UTF-8 YAML")
            }
            return nil
        } catch {
            report(nil, "cannot read YAML: \(error)", hint: "save the file as UTF-8 YAML")
            return nil
        }
    }

    func report(_ node: Node?, _ message: String, hint: String? = nil) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0,
                                      message: message, hint: hint))
    }

    /// The mapping's pairs keyed by string; unknown keys are reported with a "did you mean".
    func mapping(_ node: Node, context: String, allowed: [String]) -> [String: (key: Node, value: Node)]? {
        guard let mapping = node.mapping else {
            report(node, "\(context) must be a mapping (key: value lines)", hint: "write it as `key: value` lines indented under it")
            return nil
        }
        var out: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                report(key, "\(context) has a key that is not a plain word", hint: "use one of: \(allowed.joined(separator: ", "))")
                continue
            }
            if !allowed.contains(name) {
                var hint = "allowed keys are: \(allowed.joined(separator: ", "))"
                if let guess = Spelling.suggestion(for: name, in: allowed) { hint = "did you mean `\(guess)`?" }
                report(key, "unknown key `\(name)` in \(context)", hint: hint)
                continue
            }
            out[name] = (key, value)
        }
        return out
    }

    /// A scalar as a string (numbers and booleans as written).
    func string(_ node: Node, _ what: String) -> String? {
        guard let scalar = node.scalar else {
            report(node, "\(what) must be a single value, not a \(kindName(node))", hint: "write it on one line, quoted if it contains ': '")
            return nil
        }
        if scalar.tag == Tag(.null) && scalar.style == .plain && scalar.string.isEmpty {
            report(node, "\(what) is empty", hint: "write a value after the colon")
            return nil
        }
        return scalar.string
    }

    /// A non-empty string.
    func nonEmptyString(_ node: Node, _ what: String) -> String? {
        guard let s = string(node, what) else { return nil }
        if s.trimmingCharacters(in: .whitespaces).isEmpty {
            report(node, "\(what) is empty", hint: "write a value")
            return nil
        }
        return s
    }

    func int(_ node: Node, _ what: String, min: Int? = nil) -> Int? {
        guard let s = string(node, what) else { return nil }
        guard let n = Int(s) else {
            report(node, "\(what) must be a whole number, not `\(s)`", hint: "write e.g. `3`")
            return nil
        }
        if let min, n < min {
            report(node, "\(what) must be at least \(min), not \(n)", hint: "write a number ≥ \(min)")
            return nil
        }
        return n
    }

    func double(_ node: Node, _ what: String) -> Double? {
        guard let s = string(node, what) else { return nil }
        guard let n = Double(s) else {
            report(node, "\(what) must be a number, not `\(s)`", hint: "write e.g. `0.2`")
            return nil
        }
        return n
    }

    func bool(_ node: Node, _ what: String) -> Bool? {
        guard let s = string(node, what) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report(node, "\(what) must be true or false, not `\(s)`", hint: "write `true` or `false`")
            return nil
        }
    }

    /// A duration in seconds (`30s`, `10m`, `72h`, `1d`).
    func duration(_ node: Node, _ what: String) -> Double? {
        guard let s = string(node, what) else { return nil }
        guard let seconds = DurationText.seconds(s) else {
            report(node, "\(what) `\(s)` is not a duration", hint: "write a number with a unit: 30s, 10m, 72h or 1d")
            return nil
        }
        return seconds
    }

    /// A list of strings; a single scalar is accepted as a one-element list when `allowScalar`.
    func stringList(_ node: Node, _ what: String, allowScalar: Bool = false) -> [String]? {
        if let seq = node.sequence {
            var out: [String] = []
            for item in seq {
                guard let s = string(item, "each entry of \(what)") else { return nil }
                out.append(s)
            }
            return out
        }
        if allowScalar, let s = string(node, what) { return [s] }
        report(node, "\(what) must be a list", hint: "write it as `[a, b]` or as `- a` lines")
        return nil
    }

    /// Converts any node to a JSON value (mappings with string keys only).
    func json(_ node: Node, _ what: String) -> JobValue? {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if scalar.tag == Tag(.null) || scalar.string == "~" || scalar.string == "null" { return .null }
                if let b = node.bool, ["true", "false"].contains(scalar.string.lowercased()) { return .bool(b) }
                if let i = node.int { return .number(Double(i)) }
                if let d = node.float, Double(scalar.string) != nil { return .number(d) }
            }
            return .string(scalar.string)
        case .sequence(let seq):
            var out: [JobValue] = []
            for item in seq {
                guard let v = json(item, what) else { return nil }
                out.append(v)
            }
            return .array(out)
        case .mapping(let mapping):
            var out: [String: JobValue] = [:]
            for (k, v) in mapping {
                guard let key = k.scalar?.string else {
                    report(k, "\(what) has a key that is not a string", hint: "use plain words as keys")
                    return nil
                }
                guard let value = json(v, what) else { return nil }
                out[key] = value
            }
            return .object(out)
        case .alias:
            report(node, "\(what) uses a YAML alias", hint: "write the value out in full")
            return nil
        }
    }

    func kindName(_ node: Node) -> String {
        switch node {
        case .scalar: return "single value"
        case .sequence: return "list"
        case .mapping: return "mapping"
        case .alias: return "alias"
        }
    }
}
