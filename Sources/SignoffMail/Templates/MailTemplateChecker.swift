import Foundation

/// Checks a template's tags against ``MailTemplateContext/knownVariables``: every `{{path}}`
/// must name a known variable (relative to the enclosing sections, as Mustache resolves it),
/// HTML templates may not use unescaped tags, and partials, inheritance and delimiter changes
/// are refused (the built-in renderer does not support them in mail).
enum MailTemplateChecker {
    static func check(_ text: String, fileName: String, directory: String?, isHTML: Bool) -> [MailTemplateError] {
        var problems: [MailTemplateError] = []
        var frames: [MailVariableShape] = [MailTemplateContext.knownVariables]
        var index = text.startIndex
        func lineNumber(_ at: String.Index) -> Int { text[..<at].reduce(1) { $1 == "\n" ? $0 + 1 : $0 } }
        func problem(_ code: MailTemplateError.Code, _ at: String.Index, _ what: String) {
            let line = lineNumber(at)
            problems.append(MailTemplateError(code: code, file: fileName, line: line,
                message: "\(MailTemplateError.location(fileName, directory, line)): \(what)"))
        }
        while let open = text.range(of: "{{", range: index..<text.endIndex) {
            let triple = text[open.upperBound...].hasPrefix("{")
            let closer = triple ? "}}}" : "}}"
            let contentStart = triple ? text.index(after: open.upperBound) : open.upperBound
            guard let close = text.range(of: closer, range: contentStart..<text.endIndex) else { break }
            index = close.upperBound
            var tag = text[contentStart..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            var sigil: Character = triple ? "{" : " "
            if !triple, let first = tag.first, "#^/!>&%=<$".contains(first) {
                sigil = first
                tag = String(tag.dropFirst()).trimmingCharacters(in: .whitespaces)
            }
            switch sigil {
            case "!", "%":
                continue
            case "=", ">", "<", "$":
                problem(.unsupportedTag, open.lowerBound,
                        "{{\(sigil)\(tag)}} is not supported in mail templates (no partials, inheritance or delimiter changes); write the text out in this file")
                continue
            case "/":
                if frames.count > 1 { frames.removeLast() }
                continue
            case "{", "&":
                if isHTML {
                    problem(.unescapedHTML, open.lowerBound,
                            "unescaped tag \(triple ? "{{{\(tag)}}}" : "{{&\(tag)}}") in an HTML template could inject markup from job input; use {{\(tag)}}")
                }
            default:
                break
            }
            let name = variableName(tag)
            var resolved: MailVariableShape? = nil
            if let name {
                resolved = resolve(name, frames: frames)
                if resolved == nil {
                    problem(.unknownVariable, open.lowerBound, unknownMessage(name, frames: frames))
                }
            }
            if sigil == "#" {
                switch resolved {
                case .list(let element): frames.append(element)
                case .some(let shape): frames.append(shape)
                case .none: frames.append(frames.last!)
                }
            } else if sigil == "^" {
                frames.append(frames.last!)
            }
        }
        return problems
    }

    /// The variable a tag reads: `a.b`, or the innermost argument of a transform
    /// (`uppercased(job.name)` → `job.name`); `nil` for a transform of the sequence context
    /// (`{{#first()}}`), which is always allowed.
    private static func variableName(_ tag: String) -> String? {
        guard let paren = tag.lastIndex(of: "(") else { return tag }
        let inner = tag[tag.index(after: paren)...].prefix(while: { $0 != ")" })
        return inner.isEmpty ? nil : String(inner)
    }

    private static func resolve(_ name: String, frames: [MailVariableShape]) -> MailVariableShape? {
        if name == "." { return frames.count > 1 ? frames.last : nil }
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var candidates = Array(frames.reversed())
        if name.hasPrefix(".") {                   // `.x`: only the current frame
            parts.removeFirst()
            candidates = [frames.last!]
        }
        guard let first = parts.first, !first.isEmpty else { return nil }
        for frame in candidates {
            guard case .object(let members) = frame, var shape = members[first] else { continue }
            for part in parts.dropFirst() {
                guard case .object(let inner) = shape, let next = inner[part] else { return nil }
                shape = next
            }
            return shape
        }
        return nil
    }

    private static func unknownMessage(_ name: String, frames: [MailVariableShape]) -> String {
        // Suggest the members of the object the path was trying to reach.
        var known: [String] = []
        let parts = name.split(separator: ".").map(String.init)
        if case .object(let root) = MailTemplateContext.knownVariables {
            if parts.count > 1, case .object(let members)? = root[parts[0]] {
                known = members.keys.sorted().map { "\(parts[0]).\($0)" }
            } else {
                known = root.keys.sorted()
                if frames.count > 1, case .object(let inner) = frames.last! { known = inner.keys.sorted() + known }
            }
        }
        return "unknown variable {{\(name)}}; known here: \(known.joined(separator: ", ")); fix the name or remove the tag"
    }
}
