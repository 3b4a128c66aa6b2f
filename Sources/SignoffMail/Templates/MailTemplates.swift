import Foundation
import Mustache

/// The mail templates: built-in copies compiled into the binary, overridden file by file from
/// a configured directory, plus job-specific templates by name (`template: review-request`
/// uses `review-request.subject|txt|html.mustache` from that directory).
///
/// File names are `<name>.subject.mustache`, `<name>.txt.mustache`, `<name>.html.mustache`,
/// where the kinds' names are `request`, `reminder`, `confirmation`, `clarification`,
/// `already-decided`, `failure`. Text and subject parts are rendered without escaping; HTML
/// parts escape every value, and unescaped tags (`{{{x}}}`, `{{&x}}`) are refused there, so
/// job input can never inject markup. Check templates with ``validate(names:)`` before use
/// (`signoff jobs check`); rendering never fails for a template that validates.
public struct MailTemplates: Sendable {
    /// The three parts of a template.
    public enum Part: String, Sendable, CaseIterable {
        case subject, txt, html
    }

    /// A template parsed once at load: swift-mustache's parse, and its compiled form for the
    /// fast byte renderer (nil when the template needs the reference renderer). A class, so
    /// handing one out per rendered part is one reference count, not one per array inside.
    final class Prepared: Sendable {
        let mustache: MustacheTemplate
        let compiled: CompiledTemplate?
        init(_ mustache: MustacheTemplate) {
            self.mustache = mustache
            self.compiled = CompiledTemplate(mustache)
        }
    }

    /// Parsed templates by file name, from the directory (overrides and job templates).
    private let overrides: [String: Prepared]
    /// Sources of the override files, for validation.
    private let overrideSources: [String: String]
    /// The configured directory, if any.
    public let directory: String?

    /// Only the built-in templates.
    public static let builtin = MailTemplates(overrides: [:], sources: [:], directory: nil)

    /// The built-in templates with the `*.mustache` files of `directory` overriding them by
    /// file name. Throws ``MailTemplateError`` for the first file that cannot be read or parsed;
    /// use ``validate(directory:names:)`` to see every problem at once.
    public init(directory: String?) throws {
        guard let directory else {
            self = .builtin
            return
        }
        let (sources, readErrors) = MailTemplates.readDirectory(directory)
        if let first = readErrors.first { throw first }
        var parsed: [String: Prepared] = [:]
        for (name, text) in sources {
            switch MailTemplates.parse(text, fileName: name, directory: directory) {
            case .success(let template): parsed[name] = Prepared(template)
            case .failure(let error): throw error
            }
        }
        self.init(overrides: parsed, sources: sources, directory: directory)
    }

    private init(overrides: [String: Prepared], sources: [String: String], directory: String?) {
        self.overrides = overrides
        self.overrideSources = sources
        self.directory = directory
    }

    /// Renders the subject, text and HTML of `kind`, or of the job template `name` when given
    /// (each part falls back to the kind's template when the job template lacks it).
    /// `tag` is the subject tag's code, available as `{{tag}}`.
    public func render(_ kind: MailTemplateKind, named name: String? = nil,
                       context: MailTemplateContext, tag: String = "") throws -> RenderedMail {
        try render(kind, named: name, context: context, tag: tag, compiled: true)
    }

    /// `compiled: false` renders every part with swift-mustache over ``MailTemplateContext/variables(tag:)``:
    /// the reference the compiled renderer is tested against.
    func render(_ kind: MailTemplateKind, named name: String?, context: MailTemplateContext, tag: String,
                compiled useCompiled: Bool) throws -> RenderedMail {
        let parts = try renderUTF8(kind, named: name, context: context, tag: tag, compiled: useCompiled)
        return RenderedMail(subject: parts.subject, text: String(decoding: parts.text, as: UTF8.self),
                            html: String(decoding: parts.html, as: UTF8.self))
    }

    /// The parts as rendered: the subject collapsed to one line, text (ending with a newline) and
    /// HTML as UTF-8 bytes. The bytes are valid UTF-8 by construction (template text, String
    /// values, ASCII escapes), so the composer encodes them without decoding them into Strings.
    func renderUTF8(_ kind: MailTemplateKind, named name: String?, context: MailTemplateContext, tag: String,
                    compiled useCompiled: Bool = true) throws -> (subject: String, text: [UInt8], html: [UInt8]) {
        if let name, !hasAnyPart(of: name) {
            throw MailTemplateError.notFound(name: name, directory: directory)
        }
        // The flat tree for compiled templates; the `[String: Any]` one only if some part
        // needs swift-mustache's renderer (a template using transforms).
        let tree = context.templateValue(tag: tag)
        var vars: [String: Any]?
        var buffer = [UInt8]()
        buffer.reserveCapacity(8192)
        /// Renders part `p` into `buffer` (emptied first).
        func part(_ p: Part) {
            let prepared = template(kind: kind, named: name, part: p)
            buffer.removeAll(keepingCapacity: true)
            if useCompiled, let compiled = prepared.compiled {
                compiled.render(tree, into: &buffer)
                return
            }
            if vars == nil { vars = context.variables(tag: tag) }
            buffer.append(contentsOf: prepared.mustache.render(vars!).utf8)
        }
        part(.subject)
        let subject = MailTemplates.collapseWhitespace(buffer)
        part(.txt)
        MailTemplates.endWithNewline(&buffer)
        let text = buffer
        part(.html)
        return (subject, text, buffer)
    }

    /// Appends LF unless the text's last Character is LF (`hasSuffix("\n")`: a final CR LF is one
    /// Character, not LF, so it gets an LF too).
    static func endWithNewline(_ bytes: inout [UInt8]) {
        let count = bytes.count
        if count > 0, bytes[count - 1] == 0x0A, count == 1 || bytes[count - 2] != 0x0D { return }
        bytes.append(0x0A)
    }

    /// One line: runs of whitespace become one space, none at either end (bytes when ASCII;
    /// Unicode whitespace such as NO-BREAK SPACE is handled on Characters).
    static func collapseWhitespace(_ bytes: [UInt8]) -> String {
        guard bytes.allSatisfy({ $0 < 0x80 }) else {
            return String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var pendingSpace = false
        for byte in bytes {
            if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(0x20); pendingSpace = false }
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Every problem in the templates that would be used: the built-ins, the directory's
    /// overrides and the named job templates. Empty when all is well.
    public func validate(names: [String] = []) -> [MailTemplateError] {
        var problems: [MailTemplateError] = []
        var files: [(name: String, text: String, isBuiltin: Bool)] = []
        for kind in MailTemplateKind.allCases {
            for p in Part.allCases {
                let file = MailTemplates.fileName(kind.fileStem, p)
                if let text = overrideSources[file] {
                    files.append((file, text, false))
                } else if let text = BuiltinTemplates.files[file] {
                    files.append((file, text, true))
                } else {
                    problems.append(MailTemplateError.builtinMissing(file: file))
                }
            }
        }
        for (file, text) in overrideSources.sorted(by: { $0.key < $1.key })
        where !files.contains(where: { $0.name == file }) {
            files.append((file, text, false))
        }
        for name in names where !hasAnyPart(of: name) {
            problems.append(MailTemplateError.notFound(name: name, directory: directory))
        }
        for file in files {
            let dir = file.isBuiltin ? nil : directory
            if case .failure(let error) = MailTemplates.parse(file.text, fileName: file.name, directory: dir) {
                problems.append(error)
                continue
            }
            problems += MailTemplateChecker.check(file.text, fileName: file.name, directory: dir,
                                                  isHTML: file.name.hasSuffix(".html.mustache"))
        }
        return problems
    }

    /// Loads `directory` (if any) and validates it with `names`: every problem at once, for
    /// `signoff jobs check`.
    public static func validate(directory: String?, names: [String] = []) -> [MailTemplateError] {
        guard let directory else { return MailTemplates.builtin.validate(names: names) }
        let (sources, readErrors) = readDirectory(directory)
        if !readErrors.isEmpty { return readErrors }
        // Parse errors are reported by validate; keep the parsable ones for the rest.
        var parsed: [String: Prepared] = [:]
        for (name, text) in sources {
            if case .success(let t) = parse(text, fileName: name, directory: directory) { parsed[name] = Prepared(t) }
        }
        return MailTemplates(overrides: parsed, sources: sources, directory: directory).validate(names: names)
    }

    // MARK: - Lookup

    static func fileName(_ stem: String, _ part: Part) -> String { "\(stem).\(part.rawValue).mustache" }

    private func hasAnyPart(of name: String) -> Bool {
        Part.allCases.contains { overrides[MailTemplates.fileName(name, $0)] != nil }
    }

    func template(kind: MailTemplateKind, named name: String?, part: Part) -> Prepared {
        if name == nil, overrides.isEmpty, let t = MailTemplates.builtinTable[MailTemplates.slot(kind, part)] { return t }
        if let name, let t = overrides[MailTemplates.fileName(name, part)] { return t }
        let file = MailTemplates.fileName(kind.fileStem, part)
        if let t = overrides[file] { return t }
        // Built-ins are checked by a test; a missing one is a build defect, not a user error.
        guard let t = MailTemplates.parsedBuiltins[file] else {
            preconditionFailure("built-in template \(file) missing; run scripts/embed-templates")
        }
        return t
    }

    private static let parsedBuiltins: [String: Prepared] = {
        var out: [String: Prepared] = [:]
        for (name, text) in BuiltinTemplates.files {
            if case .success(let t) = parse(text, fileName: name, directory: nil) { out[name] = Prepared(t) }
        }
        return out
    }()

    /// The built-ins by kind and part (see ``slot(_:_:)``), so rendering with no overrides builds
    /// no file names and hashes nothing.
    private static let builtinTable: [Prepared?] = {
        var out = [Prepared?](repeating: nil, count: MailTemplateKind.allCases.count * Part.allCases.count)
        for kind in MailTemplateKind.allCases {
            for p in Part.allCases { out[slot(kind, p)] = parsedBuiltins[fileName(kind.fileStem, p)] }
        }
        return out
    }()

    /// The index of `kind`'s `part` in ``builtinTable``.
    private static func slot(_ kind: MailTemplateKind, _ part: Part) -> Int {
        let k: Int
        switch kind {
        case .request: k = 0
        case .reminder: k = 1
        case .confirmation: k = 2
        case .clarification: k = 3
        case .alreadyDecided: k = 4
        case .failure: k = 5
        case .decided: k = 6
        }
        let p: Int
        switch part {
        case .subject: p = 0
        case .txt: p = 1
        case .html: p = 2
        }
        return k * 3 + p
    }

    /// Text and subject parts get the TEXT content type (no escaping); HTML parts keep
    /// swift-mustache's default, HTML escaping.
    static func parse(_ text: String, fileName: String, directory: String?) -> Result<MustacheTemplate, MailTemplateError> {
        let isHTML = fileName.hasSuffix(".html.mustache")
        // On a line of its own the pragma is a standalone tag and leaves no trace in the output
        // (glued to the first line it would turn a leading `{{#section}}` line into a blank line);
        // it shifts parser line numbers by one, corrected below.
        let source = isHTML ? text : "{{% CONTENT_TYPE: TEXT}}\n" + text
        let shift = isHTML ? 0 : 1
        do {
            return .success(try MustacheTemplate(string: source))
        } catch let error as MustacheTemplate.ParserError {
            return .failure(.parse(file: fileName, directory: directory, line: max(1, error.context.lineNumber - shift),
                                   column: error.context.columnNumber, detail: "\(error.error)"))
        } catch {
            return .failure(.parse(file: fileName, directory: directory, line: nil, column: nil, detail: "\(error)"))
        }
    }

    private static func readDirectory(_ directory: String) -> ([String: String], [MailTemplateError]) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            return ([:], [MailTemplateError(code: .directoryUnreadable, file: nil, line: nil,
                message: "templates directory \(directory) does not exist or is not a directory; create it or fix `templates:` in signoff.yaml")])
        }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: directory) } catch {
            return ([:], [MailTemplateError(code: .directoryUnreadable, file: nil, line: nil,
                message: "cannot list templates directory \(directory): \(error.localizedDescription); check its permissions")])
        }
        var sources: [String: String] = [:]
        var errors: [MailTemplateError] = []
        for name in names.sorted() where name.hasSuffix(".mustache") {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = fm.contents(atPath: path) else {
                errors.append(MailTemplateError(code: .directoryUnreadable, file: path, line: nil,
                    message: "cannot read template \(path); check its permissions"))
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                errors.append(MailTemplateError(code: .parse, file: path, line: nil,
                    message: "template \(path) is not UTF-8; save it as UTF-8"))
                continue
            }
            sources[name] = text.replacingOccurrences(of: "\r\n", with: "\n")
        }
        return (sources, errors)
    }
}

/// The rendered parts of one mail.
public struct RenderedMail: Sendable, Hashable {
    /// One line, whitespace collapsed; the composer adds the tag.
    public var subject: String
    /// Plain text, ends with a newline.
    public var text: String
    public var html: String
}

/// A template problem: which file, where, and how to fix it.
public struct MailTemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        case parse = "template_parse"
        case unknownVariable = "template_unknown_variable"
        case unescapedHTML = "template_unescaped_html"
        case unsupportedTag = "template_unsupported_tag"
        case notFound = "template_not_found"
        case directoryUnreadable = "template_directory_unreadable"
        case builtinMissing = "template_builtin_missing"
    }

    public var code: Code
    /// The file (path when it is in the templates directory, name when built in).
    public var file: String?
    /// 1-based line, when known.
    public var line: Int?
    /// What happened and what to do.
    public var message: String

    public var description: String { "\(code.rawValue): \(message)" }

    static func location(_ file: String, _ directory: String?, _ line: Int?) -> String {
        let path = directory.map { ($0 as NSString).appendingPathComponent(file) } ?? "built-in \(file)"
        return line.map { "\(path):\($0)" } ?? path
    }

    static func parse(file: String, directory: String?, line: Int?, column: Int?, detail: String) -> MailTemplateError {
        let col = column.map { ", column \($0)" } ?? ""
        return MailTemplateError(code: .parse, file: file, line: line,
            message: "\(location(file, directory, line))\(col): the template does not parse (\(detail)); check that every {{#section}} has a matching {{/section}} and every tag is closed with }}")
    }

    static func notFound(name: String, directory: String?) -> MailTemplateError {
        let dir = directory ?? "(no templates directory configured)"
        return MailTemplateError(code: .notFound, file: nil, line: nil,
            message: "template '\(name)' not found: expected \(name).txt.mustache (and optionally .subject/.html) in \(dir); add the files or remove `template: \(name)` from the job")
    }

    static func builtinMissing(file: String) -> MailTemplateError {
        MailTemplateError(code: .builtinMissing, file: file, line: nil,
            message: "built-in template \(file) is missing from this build; run scripts/embed-templates and rebuild")
    }
}
