import Foundation

/// The `{{path}}` placeholders of a job file's strings, and their substitution.
///
/// Only dotted paths are allowed (no Mustache sections): `input.version`, `steps.draft.stdout`,
/// `steps.build.json.items.0`, `feedback`, `run.id`, `job.name`.
public enum TemplateText {
    /// One placeholder: its path and where in the string it starts.
    public struct Placeholder: Sendable, Hashable {
        public var path: [String]
        public var raw: String
    }

    /// The placeholders of `text`, or a problem description if a `{{` is unbalanced.
    public static func placeholders(in text: String) -> Result<[Placeholder], RunnerError> {
        var out: [Placeholder] = []
        var rest = text[...]
        while let open = rest.range(of: "{{") {
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                return .failure(.usage("template.unclosed", "`{{` without a matching `}}`"))
            }
            let inner = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let parts = inner.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if inner.isEmpty || parts.contains(where: { $0.isEmpty || !$0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }) {
                return .failure(.usage("template.bad_path", "`{{\(inner)}}` is not a dotted path"))
            }
            out.append(Placeholder(path: parts, raw: inner))
            rest = rest[close.upperBound...]
        }
        return .success(out)
    }

    /// Replaces every placeholder using `lookup`; unknown paths become the empty string.
    public static func render(_ text: String, lookup: ([String]) -> String?) -> String {
        guard text.contains("{{") else { return text }
        var out = ""
        var rest = text[...]
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            out += rest[..<open.lowerBound]
            let inner = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            out += lookup(inner.split(separator: ".").map(String.init)) ?? ""
            rest = rest[close.upperBound...]
        }
        out += rest
        return out
    }
}
