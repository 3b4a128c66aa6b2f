import Mustache

/// The member names of the variable tree (see ``MailTemplateContext/knownVariables``), interned:
/// the compiled renderer compares these small integers, never strings. A template name that is
/// not one of them can never match a member, exactly as a missing member.
enum TemplateKey: Int32, CaseIterable, Sendable {
    case job, name, description, run, id, attempt, owner, step, request, title, responseType, isApproval
    case choices, hasChoices, fields, hasFields, body, value, reviewer, address, marker, tag, grammar
    case command, meaning, padded, links, label, url, deadline, text, iso, decision, outcome, reason, by, at
    case clarification, problem, failure, recipient, kind, error, reminder, number

    /// The key id of `name`, or -1 (matches nothing) for a name the tree never has.
    static func id(_ name: Substring) -> Int32 { ids[String(name)] ?? -1 }

    private static let ids: [String: Int32] = {
        var out: [String: Int32] = [:]
        for key in allCases { out[String(describing: key)] = key.rawValue }
        return out
    }()
}

/// The variable tree the compiled renderer reads, flat: entries of trivial values (no reference
/// counting while rendering) and one byte arena holding every string. An object's members and a
/// list's items are contiguous entries; entry 0 is the root. The typed twin of
/// ``MailTemplateContext/variables(tag:)``'s `[String: Any]`.
struct TemplateTree: Sendable {
    enum Kind: UInt8, Sendable {
        case string, bool, list, object
    }

    /// One value. `string`: `a` = offset in `bytes`, `b` = length; `bool`: `a` = 0 or 1;
    /// `list`, `object`: `a` = first child entry, `b` = child count. `key` names an object member
    /// (-1 for list items and the root).
    struct Entry: Sendable {
        var kind: Kind
        var key: Int32
        var a: Int32
        var b: Int32
    }

    private(set) var entries: [Entry]
    private(set) var bytes: [UInt8]

    /// A tree whose root is an object of `rootMembers` members, all to be set.
    init(rootMembers: Int, byteCapacity: Int = 1024) {
        entries = []
        entries.reserveCapacity(64)
        bytes = []
        bytes.reserveCapacity(byteCapacity)
        entries.append(Entry(kind: .object, key: -1, a: 1, b: Int32(rootMembers)))
        entries.append(contentsOf: repeatElement(Entry(kind: .bool, key: -1, a: 0, b: 0), count: rootMembers))
    }

    /// The first child slot of the root object.
    static let rootFirst = 1

    /// Sets `slot` to the string `value`.
    mutating func setString(_ slot: Int, _ key: TemplateKey?, _ value: String) {
        let offset = bytes.count
        bytes.append(contentsOf: value.utf8)
        entries[slot] = Entry(kind: .string, key: key?.rawValue ?? -1, a: Int32(offset), b: Int32(bytes.count - offset))
    }

    /// Sets `slot` to a string written by `write` straight into the arena.
    mutating func setString(_ slot: Int, _ key: TemplateKey?, writing write: (inout [UInt8]) -> Void) {
        let offset = bytes.count
        write(&bytes)
        entries[slot] = Entry(kind: .string, key: key?.rawValue ?? -1, a: Int32(offset), b: Int32(bytes.count - offset))
    }

    mutating func setBool(_ slot: Int, _ key: TemplateKey?, _ value: Bool) {
        entries[slot] = Entry(kind: .bool, key: key?.rawValue ?? -1, a: value ? 1 : 0, b: 0)
    }

    /// Sets `slot` to an object (or list) of `count` members and returns the first member's slot.
    mutating func setContainer(_ slot: Int, _ key: TemplateKey?, _ kind: Kind, count: Int) -> Int {
        let first = entries.count
        entries.append(contentsOf: repeatElement(Entry(kind: .bool, key: -1, a: 0, b: 0), count: count))
        entries[slot] = Entry(kind: kind, key: key?.rawValue ?? -1, a: Int32(first), b: Int32(count))
        return first
    }

    /// Sets `slot` to an object of up to three string members in order, leaving out nil values.
    mutating func setObject(_ slot: Int, _ key: TemplateKey?, _ k0: TemplateKey, _ v0: String?,
                            _ k1: TemplateKey = .name, _ v1: String? = nil, _ k2: TemplateKey = .name, _ v2: String? = nil) {
        let count = (v0 == nil ? 0 : 1) + (v1 == nil ? 0 : 1) + (v2 == nil ? 0 : 1)
        var s = setContainer(slot, key, .object, count: count)
        if let v0 {
            setString(s, k0, v0)
            s += 1
        }
        if let v1 {
            setString(s, k1, v1)
            s += 1
        }
        if let v2 { setString(s, k2, v2) }
    }

    /// The `Any` form swift-mustache would see, for `String(describing:)` of a list or object
    /// rendered as a plain variable (an odd template; kept identical to the reference renderer).
    func anyValue(_ index: Int) -> Any {
        entries.withUnsafeBufferPointer { e in bytes.withUnsafeBufferPointer { TemplateTree.anyValue(index, e, $0) } }
    }

    static func anyValue(_ index: Int, _ entries: UnsafeBufferPointer<Entry>, _ bytes: UnsafeBufferPointer<UInt8>) -> Any {
        let e = entries[index]
        switch e.kind {
        case .string: return String(decoding: bytes[Int(e.a)..<Int(e.a + e.b)], as: UTF8.self)
        case .bool: return e.a != 0
        case .list: return (Int(e.a)..<Int(e.a + e.b)).map { anyValue($0, entries, bytes) }
        case .object:
            let members = (Int(e.a)..<Int(e.a + e.b)).map { i -> (String, Any) in
                let key = TemplateKey(rawValue: entries[i].key).map { String(describing: $0) } ?? ""
                return (key, anyValue(i, entries, bytes))
            }
            return Dictionary(members, uniquingKeysWith: { _, last in last })
        }
    }
}

/// A mail template compiled once from swift-mustache's own parse (so whitespace, standalone
/// lines and comments come out exactly as the library parses them) and rendered straight into
/// UTF-8 bytes over a ``TemplateTree``: a flat program of trivial instructions, member names as
/// interned keys, so rendering does no `Any` casts, string compares or reference counting per
/// tag. Rendering follows swift-mustache's semantics (context stack, sections over lists /
/// booleans / values, inverted sections, `CONTENT_TYPE` pragma, HTML escaping of `& < > " '`);
/// a template using anything else (transforms, partials, inheritance) does not compile and is
/// rendered by swift-mustache instead.
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

    /// The template as read from swift-mustache's tokens, before flattening.
    indirect enum Node: Sendable {
        case text([UInt8])
        case variable(Path, escaped: Bool)
        case section(Path, [Node])
        case inverted(Path, [Node])
        /// `{{% CONTENT_TYPE: … }}`: `html` true escapes what follows at this level and below.
        case contentType(html: Bool)
    }

    /// One instruction. `text`: `a` = offset in `text`, `b` = length. `variable`, `rawVariable`:
    /// `a` = path. `section`, `inverted`: `a` = path, `b` = the instruction after the body.
    struct Op: Sendable {
        enum Code: UInt8, Sendable {
            case text, variable, rawVariable, section, inverted, textType, htmlType
        }
        var code: Code
        var a: Int32
        var b: Int32
    }

    /// A compiled path: `mode` 0 top, 1 current frame, 2 up the stack; its keys are
    /// `keys[first..<first + count]`.
    struct CompiledPath: Sendable {
        var mode: UInt8
        var first: Int32
        var count: Int32
    }

    private var ops: [Op] = []
    private var paths: [CompiledPath] = []
    private var keys: [Int32] = []
    private var text: [UInt8] = []
    /// The most context frames rendering can push (1 + the deepest section nesting).
    private var maxDepth = 1

    /// Compiles a parsed template; nil when it uses something the fast renderer does not do.
    init?(_ template: MustacheTemplate) {
        guard let nodes = CompiledTemplate.compile(template) else { return nil }
        self.init(nodes: nodes)
    }

    init(nodes: [Node]) {
        maxDepth = 1 + flatten(nodes)
    }

    /// Appends the instructions of `nodes`; returns their deepest section nesting.
    private mutating func flatten(_ nodes: [Node]) -> Int {
        var depth = 0
        for node in nodes {
            switch node {
            case .text(let bytes):
                guard !bytes.isEmpty else { continue }
                ops.append(Op(code: .text, a: Int32(text.count), b: Int32(bytes.count)))
                text.append(contentsOf: bytes)
            case .variable(let path, let escaped):
                ops.append(Op(code: escaped ? .variable : .rawVariable, a: add(path), b: 0))
            case .section(let path, let body), .inverted(let path, let body):
                let isSection: Bool
                if case .section = node { isSection = true } else { isSection = false }
                let at = ops.count
                ops.append(Op(code: isSection ? .section : .inverted, a: add(path), b: 0))
                depth = max(depth, 1 + flatten(body))
                ops[at].b = Int32(ops.count)
            case .contentType(let html):
                ops.append(Op(code: html ? .htmlType : .textType, a: 0, b: 0))
            }
        }
        return depth
    }

    private mutating func add(_ path: Path) -> Int32 {
        let compiled: CompiledPath
        switch path {
        case .top:
            compiled = CompiledPath(mode: 0, first: 0, count: 0)
        case .current(let names), .stack(let names):
            let mode: UInt8
            if case .current = path { mode = 1 } else { mode = 2 }
            compiled = CompiledPath(mode: mode, first: Int32(keys.count), count: Int32(names.count))
            keys.append(contentsOf: names.map { TemplateKey.id($0[...]) })
        }
        paths.append(compiled)
        return Int32(paths.count - 1)
    }

    /// Renders with the tree's root as the only context frame; escaping starts on
    /// (swift-mustache's default).
    func render(_ tree: TemplateTree, into out: inout [UInt8]) {
        ops.withUnsafeBufferPointer { ops in
            paths.withUnsafeBufferPointer { paths in
                keys.withUnsafeBufferPointer { keys in
                    text.withUnsafeBufferPointer { text in
                        tree.entries.withUnsafeBufferPointer { entries in
                            tree.bytes.withUnsafeBufferPointer { bytes in
                                withUnsafeTemporaryAllocation(of: Int32.self, capacity: maxDepth) { stack in
                                    var renderer = Renderer(ops: ops, paths: paths, keys: keys, text: text, entries: entries,
                                                            bytes: bytes, stack: stack.baseAddress!)
                                    renderer.run(0, ops.count, html: true, into: &out)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func render(_ tree: TemplateTree) -> String {
        var out = [UInt8]()
        out.reserveCapacity(4096)
        render(tree, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Rendering

    /// The program and the tree as raw buffers, valid for one `render` call.
    private struct Renderer {
        let ops: UnsafeBufferPointer<Op>
        let paths: UnsafeBufferPointer<CompiledPath>
        let keys: UnsafeBufferPointer<Int32>
        let text: UnsafeBufferPointer<UInt8>
        let entries: UnsafeBufferPointer<TemplateTree.Entry>
        let bytes: UnsafeBufferPointer<UInt8>
        /// Context frames (entry indices), `stack[0]` the root.
        let stack: UnsafeMutablePointer<Int32>
        var depth: Int32 = 1

        init(ops: UnsafeBufferPointer<Op>, paths: UnsafeBufferPointer<CompiledPath>, keys: UnsafeBufferPointer<Int32>,
             text: UnsafeBufferPointer<UInt8>, entries: UnsafeBufferPointer<TemplateTree.Entry>,
             bytes: UnsafeBufferPointer<UInt8>, stack: UnsafeMutablePointer<Int32>) {
            self.ops = ops
            self.paths = paths
            self.keys = keys
            self.text = text
            self.entries = entries
            self.bytes = bytes
            self.stack = stack
            stack[0] = 0
        }

        mutating func run(_ from: Int, _ to: Int, html: Bool, into out: inout [UInt8]) {
            var html = html
            var i = from
            while i < to {
                let op = ops[i]
                switch op.code {
                case .text:
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: text[Int(op.a)..<Int(op.a + op.b)]))
                case .variable, .rawVariable:
                    let v = lookup(op.a)
                    if v >= 0 { write(v, escape: op.code == .variable && html, into: &out) }
                case .section:
                    let v = lookup(op.a)
                    if v >= 0 {
                        let e = entries[Int(v)]
                        switch e.kind {
                        case .bool:
                            if e.a != 0 { run(i + 1, Int(op.b), html: html, into: &out) }
                        case .list:
                            for item in e.a..<e.a + e.b { body(i, op, frame: item, html: html, into: &out) }
                        case .string, .object:
                            body(i, op, frame: v, html: html, into: &out)
                        }
                    }
                    i = Int(op.b)
                    continue
                case .inverted:
                    let v = lookup(op.a)
                    if v < 0 {
                        run(i + 1, Int(op.b), html: html, into: &out)
                    } else {
                        let e = entries[Int(v)]
                        if e.kind == .bool, e.a == 0 {
                            run(i + 1, Int(op.b), html: html, into: &out)
                        } else if e.kind == .list, e.b == 0 {
                            body(i, op, frame: v, html: html, into: &out)
                        }
                    }
                    i = Int(op.b)
                    continue
                case .textType:
                    html = false
                case .htmlType:
                    html = true
                }
                i += 1
            }
        }

        /// Renders the body of the section at `i` with `frame` pushed.
        private mutating func body(_ i: Int, _ op: Op, frame: Int32, html: Bool, into out: inout [UInt8]) {
            stack[Int(depth)] = frame
            depth += 1
            run(i + 1, Int(op.b), html: html, into: &out)
            depth -= 1
        }

        /// The member `key` of entry `index`, or -1 when it is not an object or has no such member.
        @inline(__always) private func child(_ key: Int32, of index: Int32) -> Int32 {
            let e = entries[Int(index)]
            guard e.kind == .object else { return -1 }
            var i = Int(e.a)
            let end = i + Int(e.b)
            while i < end {
                if entries[i].key == key { return Int32(i) }
                i += 1
            }
            return -1
        }

        private func lookup(_ pathIndex: Int32) -> Int32 {
            let path = paths[Int(pathIndex)]
            let first = Int(path.first), end = first + Int(path.count)
            switch path.mode {
            case 0:
                return stack[Int(depth) - 1]
            case 1:
                var value = stack[Int(depth) - 1]
                for k in first..<end {
                    value = child(keys[k], of: value)
                    if value < 0 { return -1 }
                }
                return value
            default:
                var frame = Int(depth) - 1
                while frame >= 0 {
                    var value = child(keys[first], of: stack[frame])
                    if value >= 0 {
                        for k in (first + 1)..<end {
                            value = child(keys[k], of: value)
                            if value < 0 { return -1 }
                        }
                        return value
                    }
                    frame -= 1
                }
                return -1
            }
        }

        private func write(_ index: Int32, escape: Bool, into out: inout [UInt8]) {
            let e = entries[Int(index)]
            switch e.kind {
            case .string:
                CompiledTemplate.write(UnsafeBufferPointer(rebasing: bytes[Int(e.a)..<Int(e.a + e.b)]), escape: escape, into: &out)
            case .bool:
                out.append(contentsOf: e.a != 0 ? "true".utf8 : "false".utf8)
            case .list, .object:
                var s = String(describing: TemplateTree.anyValue(Int(index), entries, bytes))
                s.withUTF8 { CompiledTemplate.write($0, escape: escape, into: &out) }
            }
        }
    }

    private static func write(_ bytes: UnsafeBufferPointer<UInt8>, escape: Bool, into out: inout [UInt8]) {
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
