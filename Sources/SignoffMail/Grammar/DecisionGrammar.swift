import Foundation

/// The outcome of reading a decision from visible reply text.
public enum GrammarResult: Sendable, Hashable {
    case decision(Decision)
    /// No decision could be read unambiguously; the request stays pending.
    case ambiguous(reason: String)
    /// A command was given but its value fails the request's type.
    case invalidValue(reason: String)
    /// The reason or comment is longer than the limit (outcome `too_large`).
    case tooLong(reason: String)
}

/// The reply grammar of EMAIL.md, read from the first non-blank line of the visible text:
///
///     APPROVE | APPROVED [sep comment]
///     REJECT  | REJECTED  sep reason
///     VALUE sep literal
///     DELEGATE sep address
///     sep = ":" | "-" | "," | "." | "—" | "：" with optional spaces
///
/// Case-insensitive, after NFKC, with zero-width characters and `*`/`_` emphasis removed.
/// Loose words (yes, ok, lgtm, +1, 👍) decide nothing; two commands, a negation, a question
/// mark after the keyword or a value failing its type are ambiguous.
public enum DecisionGrammar {
    static let separators: Set<Character> = [":", "-", ",", ".", "—", "–", "："]
    static let zeroWidth: Set<Unicode.Scalar> = ["\u{200B}", "\u{200C}", "\u{200D}", "\u{2060}", "\u{FEFF}", "\u{00AD}", "\u{200E}", "\u{200F}"]
    static let looseWords: Set<String> = ["yes", "y", "ok", "okay", "lgtm", "+1", "👍", "sure", "fine", "agreed", "ja", "oui", "si", "sí", "no", "nope", "-1", "👎"]

    enum Keyword: String { case approve, reject, value, delegate }

    /// Reads the decision from `visibleText` (the output of `ReplyExtractor.visibleText`).
    public static func parse(_ visibleText: String, expecting expected: ExpectedResponse,
                             maxReason: Int = MIMELimits.standard.maxReasonCharacters) -> GrammarResult {
        // Commands are matched on NFKC text; following reason lines keep what the reviewer wrote
        // (only zero-width characters removed).
        // Lines split at LF, CRLF or CR (TextFast.lines scans bytes).
        var rawLines = TextFast.lines(visibleText)
        for k in rawLines.indices {
            let l = rawLines[k]
            guard !TextFast.isASCII(l), l.unicodeScalars.contains(where: isZeroWidth) else { continue }
            rawLines[k] = String(String.UnicodeScalarView(l.unicodeScalars.filter { !isZeroWidth($0) }))
        }
        var firstNormalized = ""
        guard let first = rawLines.firstIndex(where: { l in
            firstNormalized = normalize(l)
            return !TextFast.trimWhitespaces(firstNormalized).isEmpty
        }) else {
            return .ambiguous(reason: "the reply is empty; write APPROVE or REJECT: reason on the first line")
        }
        let lines = rawLines
        // (the first line's NFKC form is reused when the line is within the prefix taken here)
        let firstLine = rawLines[first]
        let clipped = firstLine.utf8.count <= maxReason + 200 ? firstLine : String(firstLine.prefix(maxReason + 200))
        let line = stripEmphasis(TextFast.trimWhitespaces(clipped == firstLine ? firstNormalized : normalize(clipped)))
        let (keyword, rest) = splitKeyword(line)

        guard let keyword else {
            return bareLiteral(line, lines: lines, first: first, expected: expected)
        }
        var after = TextFast.trimWhitespaces(String(rest))
        if asksQuestion(after: after, line: line) {
            return .ambiguous(reason: "the first line asks a question (\"\(clip(line))\"); write the command without a question mark")
        }
        if !after.isEmpty {
            guard startsWithSeparator(after) else {
                return .ambiguous(reason: "\"\(clip(line))\" is not a command: put a separator such as \":\" after \(keyword.rawValue.uppercased())")
            }
            after = TextFast.trimWhitespaces(String(after.dropFirst()))
            after = stripTrailingEmphasis(after)
        }
        // The comment/reason: the rest of the first line plus the following lines up to a quote
        // header, a quote or a signature.
        var bodyLines: [String] = after.isEmpty ? [] : [after]
        var i = first + 1
        var length = after.count
        while i < lines.count, !ReplyExtractor.endsReply(lines, at: i) {
            bodyLines.append(rawLines[i])
            length += rawLines[i].count + 1
            if length > maxReason + 2 && !rawLines[i].isEmpty { break }   // long enough to be over the limit
            i += 1
        }
        while let l = bodyLines.last, TextFast.trimWhitespaces(l).isEmpty { bodyLines.removeLast() }
        while let l = bodyLines.first, TextFast.trimWhitespaces(l).isEmpty { bodyLines.removeFirst() }
        var body = bodyLines.count == 1 ? bodyLines[0] : bodyLines.joined(separator: "\n")
        while lastIsWhitespace(body) { body.removeLast() }

        if let conflict = conflictingCommand(keyword, in: [after] + Array(bodyLines.dropFirst(after.isEmpty ? 0 : 1))) {
            return .ambiguous(reason: conflict)
        }
        if body.utf8.count > maxReason, body.count > maxReason {
            return .tooLong(reason: "the \(keyword == .reject ? "reason" : "text") is \(body.count) characters (limit \(maxReason))")
        }

        switch (keyword, expected) {
        case (.approve, .approval):
            return .decision(.approve(comment: body.isEmpty ? nil : body))
        case (.reject, .approval(let required)):
            if body.isEmpty && required {
                return .ambiguous(reason: "a rejection needs a reason: write REJECT: and the reason on the same line")
            }
            return .decision(.reject(reason: body.isEmpty ? nil : body))
        case (.value, .value(let type)):
            let literal = type == .text ? body : after
            if literal.isEmpty { return .invalidValue(reason: "VALUE needs a value after the separator") }
            return validate(literal, type)
        case (.delegate, _):
            let addr = after.trimmingCharacters(in: CharacterSet(charactersIn: "<> \t"))
            let parsed = EmailAddress.parseList(addr).first ?? EmailAddress(addr)
            guard parsed.isValid, !after.contains(" ") || addr.contains("<") else {
                return .invalidValue(reason: "DELEGATE needs one email address, e.g. DELEGATE: deputy@example.org")
            }
            return .decision(.delegate(parsed))
        case (.approve, .value), (.reject, .value):
            return .ambiguous(reason: "this request asks for a value; answer VALUE: and the value")
        case (.value, .approval):
            return .ambiguous(reason: "this request asks for APPROVE or REJECT: reason, not a value")
        }
    }

    // MARK: - Normalization

    /// NFKC, zero-width characters removed.
    /// `zeroWidth.contains(c)`, without hashing.
    @inline(__always)
    static func isZeroWidth(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x200E, 0x200F: return true
        default: return false
        }
    }

    /// Scalars that NFKC leaves alone in any context: no decomposition, combining class 0, never
    /// the second half of a composition (dingbats and symbols such as ✓ ✔ ✅ ☺, and the common
    /// emoji blocks). `GrammarTests` checks every one of them against Foundation.
    static let nfkcStableRanges: [ClosedRange<UInt32>] = [0x2600...0x27BF, 0x1F300...0x1F5FF, 0x1F600...0x1F64F, 0x1F680...0x1F6FF, 0x1F900...0x1F9FF]

    /// Whether `s` is ASCII plus scalars of `nfkcStableRanges` only (then NFKC is the identity
    /// and there is no zero-width character to remove).
    static func isNFKCStable(_ s: String) -> Bool {
        for c in s.unicodeScalars where c.value >= 0x80 {
            guard nfkcStableRanges.contains(where: { $0.contains(c.value) }) else { return false }
        }
        return true
    }

    static func normalize(_ s: String) -> String {
        // ASCII is its own NFKC form and holds no zero-width characters.
        if TextFast.isASCII(s) || isNFKCStable(s) { return s }
        var scalars = String.UnicodeScalarView()
        for u in s.precomposedStringWithCompatibilityMapping.unicodeScalars where !isZeroWidth(u) { scalars.append(u) }
        return String(scalars)
    }

    static func stripEmphasis(_ s: String) -> String {
        // Without a `*` or `_` byte there is nothing to strip (the result is `s`, rebuilt).
        if !s.utf8.contains(where: { $0 == 0x2A || $0 == 0x5F }) { return s }
        var t = Substring(s)
        while let c = t.first, c == "*" || c == "_" { t = t.dropFirst() }
        // emphasis closing right after the keyword: "*APPROVE*: ok", "__REJECT__ - no"
        var out = ""
        var idx = t.startIndex
        while idx < t.endIndex, t[idx].isLetter { out.append(t[idx]); idx = t.index(after: idx) }
        var rest = t[idx...]
        while let c = rest.first, c == "*" || c == "_" { rest = rest.dropFirst() }
        return out + rest
    }

    static func stripTrailingEmphasis(_ s: String) -> String {
        // The Characters "*" and "_" end in their own byte: with neither last, nothing to strip.
        guard let last = s.utf8.last, last == 0x2A || last == 0x5F else { return TextFast.trimWhitespaces(s) }
        var t = Substring(s)
        while let c = t.last, c == "*" || c == "_" { t = t.dropLast() }
        return TextFast.trimWhitespaces(String(t))
    }

    /// `after.hasPrefix("?") || line.hasSuffix("?")`: the Character "?" is the single byte 0x3F,
    /// so only a "?" byte at that end needs the Character comparison.
    static func asksQuestion(after: String, line: String) -> Bool {
        (after.utf8.first == 0x3F && after.hasPrefix("?")) || (line.utf8.last == 0x3F && line.hasSuffix("?"))
    }

    /// `after.first.map(separators.contains) == true`, from the first byte when it is an ASCII
    /// Character of its own (followed by an ASCII byte or nothing).
    static func startsWithSeparator(_ after: String) -> Bool {
        let u = after.utf8
        if let b = u.first, b < 0x80 {
            let next = u.index(after: u.startIndex)
            if next == u.endIndex || u[next] < 0x80 { return b == 0x3A || b == 0x2D || b == 0x2C || b == 0x2E }
        }
        guard let sep = after.first else { return false }
        return separators.contains(sep)
    }

    /// `s.last?.isWhitespace == true`; a last byte that is ASCII and not whitespace ends a
    /// Character that is not whitespace (it is one by itself, or follows a Prepend scalar).
    static func lastIsWhitespace(_ s: String) -> Bool {
        guard let b = s.utf8.last else { return false }
        if b < 0x80, !(b == 0x20 || (b >= 0x09 && b <= 0x0D)) { return false }
        return s.last?.isWhitespace == true
    }

    /// The leading keyword (if the first word is one) and the text after it.
    static func splitKeyword(_ line: String) -> (Keyword?, Substring) {
        if let fast = splitKeywordASCII(line) { return fast }
        let word = line.prefix(while: { $0.isLetter })
        let rest = line[word.endIndex...]
        switch word.lowercased() {
        case "approve", "approved": return (.approve, rest)
        case "reject", "rejected": return (.reject, rest)
        case "value": return (.value, rest)
        case "delegate": return (.delegate, rest)
        default: return (nil, Substring(line))
        }
    }

    /// `splitKeyword` from the bytes when they settle it: a run of ASCII letters followed by the
    /// end, or by an ASCII non-letter that is a Character of its own (the next byte is ASCII or
    /// the end). Then the run is exactly the leading letters and its lower-casing is ASCII.
    /// Nil otherwise (a non-ASCII byte could extend the word or join the last letter).
    static func splitKeywordASCII(_ line: String) -> (Keyword?, Substring)? {
        let u = line.utf8
        var k = 0
        var idx = u.startIndex
        while idx < u.endIndex, ReplyPatternsASCII.isLetter(u[idx]) { k += 1; idx = u.index(after: idx) }
        if idx < u.endIndex {
            guard u[idx] < 0x80 else { return nil }
            let next = u.index(after: idx)
            guard next == u.endIndex || u[next] < 0x80 else { return nil }
        }
        // The words are 5 to 8 letters.
        let keyword: Keyword?
        switch k {
        case 5: keyword = asciiWordIs(u, k, "value") ? .value : nil
        case 6: keyword = asciiWordIs(u, k, "reject") ? .reject : nil
        case 7: keyword = asciiWordIs(u, k, "approve") ? .approve : nil
        case 8: keyword = asciiWordIs(u, k, "approved") ? .approve : asciiWordIs(u, k, "rejected") ? .reject : asciiWordIs(u, k, "delegate") ? .delegate : nil
        default: keyword = nil
        }
        guard let keyword else { return (nil, Substring(line)) }
        return (keyword, line[idx...])
    }

    @inline(__always)
    private static func asciiWordIs(_ u: String.UTF8View, _ count: Int, _ word: StaticString) -> Bool {
        let w = word.utf8Start
        var k = 0
        for b in u.prefix(count) { if ReplyPatternsASCII.lower(b) != w[k] { return false }; k += 1 }
        return true
    }

    private static let negations: Set<String> = ["not", "don't", "dont", "do not", "never", "no", "cannot", "can't", "won't", "nicht", "pas", "ne"]

    /// A second, different command, or a negated command, in the comment or reason.
    static func conflictingCommand(_ keyword: Keyword, in texts: [String]) -> String? {
        for text in texts {
            // Only the words approve(d)/reject(ed) matter, and lower-casing never turns a
            // non-ASCII character into their letters: without those letters (any case) the text
            // names no command.
            guard TextFast.containsIgnoringASCIICase(text, "approve") || TextFast.containsIgnoringASCIICase(text, "reject") else { continue }
            let words = text.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "'" }).map(String.init)
            for (n, w) in words.enumerated() {
                let k: Keyword? = ["approve", "approved"].contains(w) ? .approve : ["reject", "rejected"].contains(w) ? .reject : nil
                guard let k else { continue }
                if k != keyword, keyword == .approve || keyword == .reject {
                    return "the reply contains both \(keyword.rawValue.uppercased()) and \(k.rawValue.uppercased()); answer with one command"
                }
                if n > 0, negations.contains(words[n - 1]) || (n > 1 && negations.contains(words[n - 2] + " " + words[n - 1])) {
                    return "the reply negates a command (\"\(words[max(0, n - 1)]) \(w)\"); answer with one plain command"
                }
            }
        }
        return nil
    }

    // MARK: - Values

    private static func bareLiteral(_ line: String, lines: [String], first: Int, expected: ExpectedResponse) -> GrammarResult {
        let lower = line.lowercased()
        let firstWord = lower.prefix(while: { !$0.isWhitespace })
        let negated = ["don't", "dont", "do", "not", "never", "cannot", "can't", "won't"].contains(String(firstWord))
            && (lower.contains("approve") || lower.contains("reject"))
        if negated { return .ambiguous(reason: "the first line negates a command (\"\(clip(line))\"); write APPROVE or REJECT: reason") }
        if case .value(let type) = expected {
            let literal = line.trimmingCharacters(in: .whitespaces)
            switch type {
            case .number:
                if case .decision(let d) = validate(literal, .number) { return .decision(d) }
            case .choice(let choices):
                if let c = choices.first(where: { $0.compare(literal, options: [.caseInsensitive]) == .orderedSame }) {
                    return .decision(.value(.choice(c)))
                }
            case .date:
                if case .decision(let d) = validate(literal, .date) { return .decision(d) }
            case .text:
                break
            }
            return .ambiguous(reason: "no command on the first line (\"\(clip(line))\"); write VALUE: and the value")
        }
        let word = lower.trimmingCharacters(in: CharacterSet.punctuationCharacters.union(.whitespaces).subtracting(CharacterSet(charactersIn: "+-")))
        if looseWords.contains(word) || looseWords.contains(lower.trimmingCharacters(in: .whitespaces)) {
            return .ambiguous(reason: "\"\(clip(line))\" decides nothing; write APPROVE or REJECT: reason on the first line")
        }
        return .ambiguous(reason: "no command on the first line (\"\(clip(line))\"); write APPROVE or REJECT: reason")
    }

    /// Validates a literal against a value type.
    public static func validate(_ literal: String, _ type: ExpectedResponse.ValueType) -> GrammarResult {
        let s = literal.trimmingCharacters(in: .whitespaces)
        switch type {
        case .number:
            let cleaned = s.replacingOccurrences(of: "_", with: "")
            let numberShape = cleaned.range(of: #"^[+-]?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?$"#, options: .regularExpression) != nil
            guard numberShape, let d = Decimal(string: cleaned, locale: Locale(identifier: "en_US_POSIX")), d.isFinite else {
                return .invalidValue(reason: "\"\(clip(s))\" is not a number (write digits with an optional decimal point, e.g. 42 or 3.5)")
            }
            return .decision(.value(.number(d)))
        case .choice(let choices):
            if let c = choices.first(where: { $0.compare(s, options: [.caseInsensitive]) == .orderedSame }) {
                return .decision(.value(.choice(c)))
            }
            return .invalidValue(reason: "\"\(clip(s))\" is not one of the choices: \(choices.joined(separator: ", "))")
        case .date:
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
               let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1 {
                var cal = Calendar(identifier: .gregorian)
                cal.timeZone = TimeZone(identifier: "UTC")!
                if let date = cal.date(from: DateComponents(year: y, month: m, day: d)),
                   cal.component(.day, from: date) == d, cal.component(.month, from: date) == m {
                    return .decision(.value(.date(s)))
                }
            }
            return .invalidValue(reason: "\"\(clip(s))\" is not a date; write it as YYYY-MM-DD")
        case .text:
            return .decision(.value(.text(s)))
        }
    }

    static func clip(_ s: String) -> String { s.count > 60 ? String(s.prefix(57)) + "…" : s }
}
