import Mustache

/// A value in the variable tree the fast renderer reads (the typed twin of
/// ``MailTemplateContext/variables(tag:)``'s `[String: Any]`).
enum TemplateValue: Sendable {
    case string(String)
    case bool(Bool)
    case list([TemplateValue])
    case object(TemplateObject)

    /// The `Any` form swift-mustache would see, for `String(describing:)` of a list or object
    /// rendered as a plain variable (an odd template; kept identical to the reference renderer).
    var anyValue: Any {
        switch self {
        case .string(let s): return s
        case .bool(let b): return b
        case .list(let l): return l.map(\.anyValue)
        case .object(let o): return Dictionary(o.members.map { ($0.0, $0.1.anyValue) }, uniquingKeysWith: { _, last in last })
        }
    }
}

/// The members of an object in the variable tree, in order: a handful each, so a linear search
/// beats hashing.
struct TemplateObject: Sendable, ExpressibleByDictionaryLiteral {
    var members: [(String, TemplateValue)]

    init(dictionaryLiteral elements: (String, TemplateValue)...) {
        members = elements
    }

    mutating func append(_ name: String, _ value: TemplateValue) {
        members.append((name, value))
    }

    subscript(name: String) -> TemplateValue? {
        for member in members where member.0 == name { return member.1 }
        return nil
    }
}

/// A mail template compiled once from swift-mustache's own parse (so whitespace, standalone
/// lines and comments come out exactly as the library parses them) and rendered straight into
/// UTF-8 bytes over a ``TemplateValue`` tree: no `Any` casts, `Mirror` lookups or string
/// concatenation per tag. Rendering follows swift-mustache's semantics (context stack, sections
/// over lists / booleans / values, inverted sections, `CONTENT_TYPE` pragma, HTML escaping of
/// `& < > " '`); a template using anything else (transforms, partials, inheritance) does not
/// compile and is rendered by swift-mustache instead.
struct CompiledTemplate: Sendable {
    /// A variable reference: `.`, `.a.b` (current frame only) or `a.b` (searched up the stack).
    enum Path: Sendable {
        case top
        case current([String])
        case stack([String])

        init(_ name: String) {
            if name == "." {
                self = .top
            } else if name.first == "." {
                self = .current(name.split(separator: ".").map(String.init))
            } else {
                let parts = name.split(separator: ".").map(String.init)
                self = parts.isEmpty ? .top : .stack(parts)
            }
        }
    }

    indirect enum Node: Sendable {
        case text([UInt8])
        case variable(Path, escaped: Bool)
        case section(Path, [Node])
        case inverted(Path, [Node])
        /// `{{% CONTENT_TYPE: … }}`: `html` true escapes what follows at this level and below.
        case contentType(html: Bool)
    }

    let nodes: [Node]

    /// Compiles a parsed template; nil when it uses something the fast renderer does not do.
    init?(_ template: MustacheTemplate) {
        guard let nodes = CompiledTemplate.compile(template) else { return nil }
        self.nodes = nodes
    }

    /// Renders with `root` as the only context frame; escaping starts on (swift-mustache's default).
    func render(_ root: TemplateValue, into out: inout [UInt8]) {
        var stack: [TemplateValue] = [root]
        stack.reserveCapacity(8)
        CompiledTemplate.render(nodes, html: true, stack: &stack, into: &out)
    }

    func render(_ root: TemplateValue) -> String {
        var out = [UInt8]()
        out.reserveCapacity(4096)
        render(root, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Rendering

    private static func render(_ nodes: [Node], html: Bool, stack: inout [TemplateValue], into out: inout [UInt8]) {
        var html = html
        for node in nodes {
            switch node {
            case .text(let bytes):
                out.append(contentsOf: bytes)
            case .variable(let path, let escaped):
                guard let value = lookup(path, stack) else { continue }
                switch value {
                case .string(let s): write(s, escape: escaped && html, into: &out)
                case .bool(let b): write(b ? "true" : "false", escape: false, into: &out)
                case .list, .object: write(String(describing: value.anyValue), escape: escaped && html, into: &out)
                }
            case .section(let path, let body):
                guard let value = lookup(path, stack) else { continue }
                switch value {
                case .bool(let b):
                    if b { render(body, html: html, stack: &stack, into: &out) }
                case .list(let items):
                    for item in items {
                        stack.append(item)
                        render(body, html: html, stack: &stack, into: &out)
                        stack.removeLast()
                    }
                case .string, .object:
                    stack.append(value)
                    render(body, html: html, stack: &stack, into: &out)
                    stack.removeLast()
                }
            case .inverted(let path, let body):
                switch lookup(path, stack) {
                case .none:
                    render(body, html: html, stack: &stack, into: &out)
                case .bool(let b)?:
                    if !b { render(body, html: html, stack: &stack, into: &out) }
                case .list(let items)? where items.isEmpty:
                    stack.append(.list(items))
                    render(body, html: html, stack: &stack, into: &out)
                    stack.removeLast()
                default:
                    break
                }
            case .contentType(let isHTML):
                html = isHTML
            }
        }
    }

    private static func child(_ name: String, of value: TemplateValue) -> TemplateValue? {
        guard case .object(let object) = value else { return nil }
        return object[name]
    }

    private static func lookup(_ path: Path, _ stack: [TemplateValue]) -> TemplateValue? {
        switch path {
        case .top:
            return stack.last
        case .current(let names):
            var value = stack[stack.count - 1]
            for name in names {
                guard let next = child(name, of: value) else { return nil }
                value = next
            }
            return value
        case .stack(let names):
            var i = stack.count - 1
            while i >= 0 {
                if var value = child(names[0], of: stack[i]) {
                    for name in names.dropFirst() {
                        guard let next = child(name, of: value) else { return nil }
                        value = next
                    }
                    return value
                }
                i -= 1
            }
            return nil
        }
    }

    private static func write(_ text: String, escape: Bool, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            guard escape else {
                out.append(contentsOf: bytes)
                return
            }
            var start = 0
            for i in 0..<bytes.count {
                let replacement: StaticString
                switch bytes[i] {
                case 0x3C: replacement = "&lt;"
                case 0x3E: replacement = "&gt;"
                case 0x26: replacement = "&amp;"
                case 0x22: replacement = "&quot;"
                case 0x27: replacement = "&#39;"
                default: continue
                }
                if start < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i])) }
                replacement.withUTF8Buffer { out.append(contentsOf: $0) }
                start = i + 1
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
    }

    // MARK: - Compiling swift-mustache's token tree

    /// Reads the library's parsed tokens (an internal enum, read by reflection once per template
    /// at load time). Any token shape not recognised makes the whole template fall back.
    private static func compile(_ template: MustacheTemplate) -> [Node]? {
        guard let tokens = Mirror(reflecting: template).children.first(where: { $0.label == "tokens" })?.value,
              Mirror(reflecting: tokens).displayStyle == .collection else { return nil }
        var nodes: [Node] = []
        for token in Mirror(reflecting: tokens).children.map(\.value) {
            let mirror = Mirror(reflecting: token)
            guard mirror.displayStyle == .enum, let payload = mirror.children.first,
                  let label = payload.label else { return nil }
            switch label {
            case "text":
                guard let text = payload.value as? String else { return nil }
                nodes.append(.text(Array(text.utf8)))
            case "variable", "unescapedVariable":
                guard let (name, transforms, _) = fields(payload.value), transforms.isEmpty else { return nil }
                nodes.append(.variable(Path(name), escaped: label == "variable"))
            case "section", "invertedSection":
                guard let (name, transforms, inner) = fields(payload.value), transforms.isEmpty,
                      let inner, let body = compile(inner) else { return nil }
                nodes.append(label == "section" ? .section(Path(name), body) : .inverted(Path(name), body))
            case "contentType":
                guard let type = payload.value as? any MustacheContentType else { return nil }
                let probe = "<>&\"'x"
                switch type.escapeText(probe) {
                case probe: nodes.append(.contentType(html: false))
                case "&lt;&gt;&amp;&quot;&#39;x": nodes.append(.contentType(html: true))
                default: return nil
                }
            default:
                return nil  // partials, inheritance blocks: the reference renderer handles them
            }
        }
        return nodes
    }

    /// `(name:, transforms:, template:)` of a variable or section token.
    private static func fields(_ payload: Any) -> (String, [String], MustacheTemplate?)? {
        var name: String?
        var transforms: [String]?
        var template: MustacheTemplate?
        for child in Mirror(reflecting: payload).children {
            switch child.label {
            case "name": name = child.value as? String
            case "transforms": transforms = child.value as? [String]
            case "template": template = child.value as? MustacheTemplate
            default: return nil
            }
        }
        guard let name, let transforms else { return nil }
        return (name, transforms, template)
    }
}
