import Foundation

/// Finds the text a reviewer actually typed in a reply: everything above our reply-above marker,
/// the first quote header ("On … wrote:" and its localized forms, also wrapped over two lines),
/// `-----Original Message-----` separators, Outlook `From:/Sent:` blocks, a trailing `>` quote,
/// and signatures (`-- `, "Sent from my …").
public enum ReplyExtractor {
    /// The marker our request mails put below the reviewer's typing area.
    public static let replyAboveMarker = "-- reply above this line --"

    /// The visible reply: the lines above the first cut, with trailing quote blocks, leading and
    /// trailing blank lines and separator-only lines removed. Input line ends may be LF or CRLF.
    public static func visibleText(_ text: String) -> String {
        // The lines are split once (offsets only); a line becomes a String only when a rule reads
        // its text — the quoted request below the cut is never copied.
        let lines = LazyLines(text)
        var start = 0
        var cut = cutIndex(in: lines, from: start)
        // Bottom-posting: a quote header with nothing typed above it introduces the quote the
        // reviewer answers below. Skip the header and the quoted block and read what follows.
        var rounds = 0
        while rounds < 5, cut < lines.count, (start..<cut).allSatisfy(lines.isBlankLine),
              let headerLength = quoteHeaderLength(lines, at: cut) {
            var next = cut + headerLength
            while next < lines.count, lines.isBlankLine(next) || lines.isQuotedLine(next) { next += 1 }
            guard next < lines.count else { break }
            start = next
            cut = cutIndex(in: lines, from: start)
            rounds += 1
        }
        // A quote block at the end (with nothing typed after it) is not part of the reply.
        guard let lastOwn = (start..<cut).last(where: { !lines.isQuotedLine($0) && !lines.isBlankLine($0) }) else { return "" }
        var end = lastOwn + 1
        while end > start, lines.isBlankLine(end - 1) || isSeparatorOnly(lines[end - 1]) { end -= 1 }
        var begin = start
        while begin < end, lines.isBlankLine(begin) { begin += 1 }
        if end - begin == 1 { return trimTrailingSpaces(lines[begin]) }
        var out = ""
        for k in begin..<end {
            if k > begin { out.append("\n") }
            out.append(trimTrailingSpaces(lines[k]))
        }
        return out
    }

    /// `line` without trailing space and tab Characters.
    static func trimTrailingSpaces(_ line: String) -> String {
        // The Characters " " and "\t" are single scalars: a line whose last byte is neither ends
        // with neither.
        guard let b = line.utf8.last, b == 0x20 || b == 0x09 else { return line }
        var l = Substring(line)
        while let c = l.last, c == " " || c == "\t" { l = l.dropLast() }
        return String(l)
    }

    /// The index of the first line that is not part of the reply (lines.count when none).
    public static func cutIndex(_ lines: [String], from start: Int = 0) -> Int { cutIndex(in: lines, from: start) }

    static func cutIndex<L: ReplyLines>(in lines: L, from start: Int) -> Int {
        var i = start
        while i < lines.count {
            defer { i += 1 }
            // Headers, separators and signatures are short; long lines are text.
            if lines.utf8Count(at: i) > 1000 { continue }
            // Inside a `>` quote nothing the reviewer typed can start; the trailing quote block
            // is dropped by `visibleText`.
            if lines.isQuotedLine(i) { continue }
            let trimmed = lines[i].trimmedSpaces
            if trimmed.isEmpty { continue }
            if containsMarkerPhrase(trimmed) { return i }
            if startsWithCommand(trimmed) { continue }
            if isSignatureStart(trimmed) { return i }
            if isOriginalMessageSeparator(trimmed) { return i }
            if quoteHeaderLength(lines, at: i) != nil { return i }
            if isHeaderBlock(lines, at: i) { return i }
        }
        return lines.count
    }

    /// A line that starts with a grammar keyword and a separator is the reviewer's command,
    /// never a quote header or a header block.
    static func startsWithCommand(_ trimmed: String) -> Bool {
        var copy = trimmed
        if let fast = copy.withUTF8(ReplyPatternsASCII.startsWithCommand) { return fast }
        let t = trimmed.drop(while: { $0 == "*" || $0 == "_" })
        let word = t.prefix(while: { $0.isLetter }).lowercased()
        guard ["approve", "approved", "reject", "rejected", "value", "delegate"].contains(word) else { return false }
        let rest = t.dropFirst(word.count).drop(while: { $0 == "*" || $0 == "_" || $0 == " " })
        return rest.isEmpty || rest.first.map { ":-,.—–：".contains($0) } == true
    }

    /// Whether the line at `i` ends the reply because of what it says (a quote header,
    /// a separator, a header block, a signature or our marker). Used by the grammar to end a
    /// reason.
    public static func endsReply(_ lines: [String], at i: Int) -> Bool { endsReply(in: lines, at: i) }

    static func endsReply<L: ReplyLines>(in lines: L, at i: Int) -> Bool {
        if lines.isQuotedLine(i) { return true }
        if lines.utf8Count(at: i) > 1000 { return false }
        let trimmed = lines[i].trimmedSpaces
        if trimmed.isEmpty { return false }
        return containsMarkerPhrase(trimmed) || isSignatureStart(trimmed)
            || isOriginalMessageSeparator(trimmed) || quoteHeaderLength(lines, at: i) != nil || isHeaderBlock(lines, at: i)
    }

    /// `trimmed.lowercased().contains("reply above this line")`.
    static func containsMarkerPhrase(_ trimmed: String) -> Bool {
        if let fast = TextFast.asciiLowercasedContains(trimmed, "reply above this line") { return fast }
        // Lower-casing maps no non-ASCII character to these letters except U+0130 → "i" + U+0307,
        // which cannot sit inside the phrase ("is", "in" follow its i): without the phrase in the
        // ASCII bytes (any case), the lower-cased text cannot contain it.
        guard TextFast.containsIgnoringASCIICase(trimmed, "reply above this line") else { return false }
        return trimmed.lowercased().contains("reply above this line")
    }

    static func isBlank(_ s: String) -> Bool {
        var copy = s
        if let fast = copy.withUTF8(TextFast.blankFromBytes) { return fast }
        return s.allSatisfy { $0.isWhitespace }
    }

    static func isQuoted(_ s: String) -> Bool {
        var copy = s
        if let fast = copy.withUTF8(isQuotedBytes) { return fast }
        return s.drop(while: { $0 == " " }).first == ">"
    }

    /// `isQuoted` from the bytes when they settle it: skip spaces; a `>` followed by an ASCII
    /// byte (or nothing) is the character `>`. Nil when a non-ASCII byte decides.
    @inline(__always)
    static func isQuotedBytes(_ u: UnsafeBufferPointer<UInt8>) -> Bool? {
        var i = 0
        while i < u.count, u[i] == 0x20 { i += 1 }
        guard i < u.count else { return false }
        if u[i] != 0x3E { return u[i] < 0x80 ? false : nil }
        return i + 1 == u.count || u[i + 1] < 0x80 ? true : nil
    }

    static func isSeparatorOnly(_ s: String) -> Bool {
        var copy = s
        let fast = copy.withUTF8 { u -> Bool? in
            var any = false
            for b in u {
                if b >= 0x80 { return nil }
                if b == 0x20 || (b >= 0x09 && b <= 0x0D) { continue }
                switch b {
                case 0x2D, 0x5F, 0x3D, 0x2A, 0x23, 0x7E, 0x2B, 0x2E: any = true
                default: return false
                }
            }
            return any
        }
        if let fast { return fast }
        let chars = s.filter { !$0.isWhitespace }
        return !chars.isEmpty && chars.allSatisfy { "-_=*#~+—–ᐧ.".contains($0) }
    }

    // MARK: signatures

    static let signatureRegex = try! NSRegularExpression(pattern: [
        #"^--\s*$"#,
        #"^__\s*$"#,
        #"^(sent|envoy[ée]|enviado|inviato|verzonden|gesendet|skickat|sendt|wys[lł]ane|отправлено|надіслано)\s+(from|with|via|using|on|de|depuis|desde|do|da|dal|dal mio|vanaf|met|von|från|fra|z|с|из)\b.{0,60}$"#,
        #"^von meinem .{1,40} gesendet\.?$"#,
        #"^get outlook for .{1,30}$"#,
        #"^diese nachricht wurde von meinem .*gesendet\.?$"#,
        #"^(from my|sent from my) (iphone|ipad|android|mobile|phone|blackberry|samsung|galaxy|smartphone).{0,30}$"#,
        #"^(sent|enviado|envoy[ée]) (from|desde|depuis|de) (my|mi|mon) .{1,40}$"#,
    ].joined(separator: "|"), options: [.caseInsensitive])

    static func isSignatureStart(_ trimmedLine: String) -> Bool {
        if trimmedLine == "--" || trimmedLine == "-- " { return true }
        // (a String has at most as many Characters as UTF-8 bytes: short byte counts settle it)
        if trimmedLine.utf8.count > 90, trimmedLine.count > 90 { return false }
        if ReplyPatternsASCII.cannotBeSignature(trimmedLine) { return false }
        let r = NSRange(trimmedLine.startIndex..., in: trimmedLine)
        return signatureRegex.firstMatch(in: trimmedLine, range: r) != nil
    }

    // MARK: separators

    static let separatorRegex = try! NSRegularExpression(pattern:
        #"^[>\s]*(-{2,}|_{2,}|={2,})?\s*(original message|original-nachricht|urspr[üu]ngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|oprindelig meddelelse|alkuper[äa]inen viesti|wiadomo[śs][ćc] oryginalna|исходное сообщение|mensagem original|forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение|原始邮件|原始郵件)\s*(-{2,}|_{2,}|={2,})?\s*$|^begin forwarded message:?$|^anfang der weitergeleiteten nachricht:?$|^d[ée]but du message r[ée]exp[ée]di[ée]\s*:?$"#,
        options: [.caseInsensitive])

    static func isOriginalMessageSeparator(_ trimmedLine: String) -> Bool {
        guard trimmedLine.utf8.count < 120 || trimmedLine.count < 120 else { return false }
        // Trim "*" and " " scalars (single bytes): when neither end byte is one, the line stays.
        let u = trimmedLine.utf8
        var trimmedLine = trimmedLine
        if let f = u.first, let l = u.last, f == 0x2A || f == 0x20 || l == 0x2A || l == 0x20 {
            var t = Substring(trimmedLine).unicodeScalars
            while let c = t.first, c == "*" || c == " " { t.removeFirst() }
            while let c = t.last, c == "*" || c == " " { t.removeLast() }
            trimmedLine = String(t)
        }
        if let fast = ReplyPatternsASCII.withPlainASCII(trimmedLine, ReplyPatternsASCII.separator) { return fast }
        let r = NSRange(trimmedLine.startIndex..., in: trimmedLine)
        return separatorRegex.firstMatch(in: trimmedLine, range: r) != nil
    }

    // MARK: quote headers

    static let wroteWord = try! NSRegularExpression(pattern:
        #"(^|[^\p{L}])(wrote|writes|a [ée]crit|schrieb|schreef|geschreven|skrev|escribi[óo]|ha scritto|scrisse|escreveu|napisa[lł](\(a\))?|написал(а|\(а\))?|написав(ла)?|пише|kirjoitti|[íi]rta|napsal(a)?|yazd[ıi]|έγραψε|kirjutas|rakstīja|parašė|a scris|pisze|skriver|skrifaði)($|[^\p{L}])|写道|寫道|のメッセージ"#,
        options: [.caseInsensitive])
    static let headerEnd = try! NSRegularExpression(pattern:
        #"([:：]|wrote|-{2,})\s*$"#, options: [.caseInsensitive])
    static let leadRegex = try! NSRegularExpression(pattern:
        #"^[>\s]*((on|le|am|el|il|op|den|d\.|på|em|w dniu|dnia|citando|quoting|в|у|на|el d[íi]a|in data|a las|-{2,}\s*on)(?![\p{L}])|在|於|\d)"#,
        options: [.caseInsensitive])
    static let dateFirst = try! NSRegularExpression(pattern:
        #"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b.*(\d{1,2}:\d{2}|<|@)"#, options: [])
    static let shapeRegex = try! NSRegularExpression(pattern:
        #"@|\d{1,2}:\d{2}|\b(19|20)\d{2}\b"#, options: [])

    /// How many lines the quote header at `i` spans (1…5), or nil when there is none.
    /// Handles "On … wrote:", localized forms with the verb anywhere ("Am … schrieb X:"),
    /// Gmail's bare "2016-10-24 15:36 GMT+02:00 Name <addr>:" and headers wrapped over lines.
    static func quoteHeaderLength<L: ReplyLines>(_ lines: L, at i: Int) -> Int? {
        guard lines.utf8Count(at: i) < 600 else { return nil }
        let first = lines[i].trimmedSpaces
        guard !first.isEmpty, first.utf8.count < 300 || first.count < 300, !startsWithCommand(first) else { return nil }
        if isQuoted(first) { return nil }
        if !ReplyPatternsASCII.cannotBeDateFirst(first), matches(dateFirst, first) { return 1 + continuationLines(lines, after: i, until: { $0.hasSuffix(":") || $0.hasSuffix(">") }) }
        if isHeader(first) { return 1 }
        // Wrapped: a line that starts like a header ("On …", "Am …", a date) may continue over
        // up to five lines; a line that only names an address ("Name <a@b> schrieb am …") over two.
        let strong = ReplyPatternsASCII.withPlainASCII(first, ReplyPatternsASCII.lead) ?? matches(leadRegex, first)
        let weak = TextFast.containsCharacter(first, 0x40) || first.hasSuffix("<")
        guard strong || weak else { return nil }
        let maxSpan = strong ? 5 : 1
        var joined = first
        var e = i + 1
        while e < lines.count, e <= i + maxSpan {
            if lines.utf8Count(at: e) > 600 { return nil }
            let next = lines[e].trimmedSpaces
            if !next.isEmpty {
                if startsWithCommand(next) { return nil }
                joined += " " + next
                if joined.utf8.count > 400, joined.count > 400 { return nil }
                if ReplyPatternsASCII.withPlainASCII(next, ReplyPatternsASCII.headerEnd) ?? matches(headerEnd, next) {
                    return isHeader(joined) ? e - i + 1 : nil
                }
            }
            e += 1
        }
        return nil
    }

    private static func isHeader(_ s: String) -> Bool {
        if let fast = ReplyPatternsASCII.withPlainASCII(s, ReplyPatternsASCII.isHeader) { return fast }
        return matches(wroteWord, s) && matches(headerEnd, s) && (matches(shapeRegex, s) || matches(leadRegex, s))
    }

    private static func continuationLines<L: ReplyLines>(_ lines: L, after i: Int, until done: (String) -> Bool) -> Int {
        let first = lines[i].trimmedSpaces
        if done(first) { return 0 }
        if i + 1 < lines.count, done(lines[i + 1].trimmedSpaces) { return 1 }
        return 0
    }

    private static func matches(_ regex: NSRegularExpression, _ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    // MARK: Outlook header blocks

    static let fromKey = try! NSRegularExpression(pattern:
        #"^[>\s]*\*?\s*(from|von|de|van|da|fra|från|od|от|від|mittente|l[äa]hett[äa]j[äa]|feladó|kimden|发件人|寄件者|差出人)\s*\*?\s*[:：]"#,
        options: [.caseInsensitive])
    static let otherKey = try! NSRegularExpression(pattern:
        #"^[>\s]*\*?\s*(sent|date|gesendet|datum|envoy[ée]|enviado|fecha|data|inviato|verzonden|sendt|skickat|wys[lł]ano|отправлено|дата|надіслано|发送时间|日期|送信日時|l[äa]hetetty|to|an|à|a|para|aan|til|till|do|кому|subject|betreff|objet|asunto|oggetto|onderwerp|emne|[äa]mne|temat|тема|risposta|cc|收件人|主题)\s*\*?\s*[:：]"#,
        options: [.caseInsensitive])

    static func isHeaderBlock<L: ReplyLines>(_ lines: L, at i: Int) -> Bool {
        guard lines.utf8Count(at: i) < 1000,
              ReplyPatternsASCII.withPlainASCII(lines[i], ReplyPatternsASCII.fromKey) ?? matches(fromKey, lines[i]) else { return false }
        var j = i + 1
        while j < lines.count, j <= i + 6 {
            if lines.utf8Count(at: j) < 1000, matches(otherKey, lines[j]) { return true }
            else if !lines.isBlankLine(j) && j > i + 2 { return false }
            j += 1
        }
        return false
    }
}

/// The lines the extractor's rules read: `[String]`, or `LazyLines` (split once, each line made a
/// String only when its text is read). Both answer every question exactly as the rules do on
/// the line's String.
protocol ReplyLines {
    var count: Int { get }
    subscript(_ i: Int) -> String { get }
    /// `self[i].utf8.count`.
    func utf8Count(at i: Int) -> Int
    /// `ReplyExtractor.isQuoted(self[i])`.
    func isQuotedLine(_ i: Int) -> Bool
    /// `ReplyExtractor.isBlank(self[i])`.
    func isBlankLine(_ i: Int) -> Bool
}

extension Array: ReplyLines where Element == String {
    func utf8Count(at i: Int) -> Int { self[i].utf8.count }
    func isQuotedLine(_ i: Int) -> Bool { ReplyExtractor.isQuoted(self[i]) }
    func isBlankLine(_ i: Int) -> Bool { ReplyExtractor.isBlank(self[i]) }
}

/// The lines of a text as `TextFast.lines` splits them (at LF, CRLF and CR), kept as byte offsets
/// into the text; a line becomes a String (cached) only when its text is read, and the quote and
/// blank checks read the bytes. Local to one extraction (not shared, not Sendable).
final class LazyLines: ReplyLines {
    private let text: String
    /// Start and end byte offsets of line k at 2k and 2k+1.
    private let bounds: [Int]
    private var cache: [String?]
    let count: Int

    init(_ text: String) {
        var copy = text
        var b: [Int] = []
        copy.withUTF8 { u in
            b.reserveCapacity(2 * (u.count / 40 + 4))
            var start = 0
            var i = 0
            let n = u.count
            if n > 0, let base = u.baseAddress, memchr(base, 0x0D, n) == nil {
                // No CR (decoded text parts have LF line ends): every break is an LF, found by memchr.
                while start < n, let p = memchr(base + start, 0x0A, n - start) {
                    let lf = UnsafeRawPointer(p) - UnsafeRawPointer(base)
                    b.append(start); b.append(lf)
                    start = lf + 1
                }
                i = n
            }
            while i < n {
                let c = u[i]
                if c == 0x0A || c == 0x0D {
                    b.append(start); b.append(i)
                    var next = i + 1
                    if c == 0x0D, next < n, u[next] == 0x0A { next += 1 }
                    start = next
                    i = next
                    continue
                }
                i += 1
            }
            b.append(start); b.append(n)
        }
        self.text = copy   // native and contiguous after `withUTF8`
        self.bounds = b
        self.count = b.count / 2
        self.cache = Array(repeating: nil, count: b.count / 2)
    }

    @inline(__always)
    private func withLineBytes<T>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        let s = bounds[2 * i], e = bounds[2 * i + 1]
        if let r = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeBufferPointer(rebasing: $0[s..<e])) }) { return r }
        return Array(text.utf8)[s..<e].withUnsafeBufferPointer(body)
    }

    subscript(_ i: Int) -> String {
        if let s = cache[i] { return s }
        let s = withLineBytes(i) { String(decoding: $0, as: UTF8.self) }
        cache[i] = s
        return s
    }

    func utf8Count(at i: Int) -> Int { bounds[2 * i + 1] - bounds[2 * i] }

    func isQuotedLine(_ i: Int) -> Bool {
        if let fast = withLineBytes(i, ReplyExtractor.isQuotedBytes) { return fast }
        return ReplyExtractor.isQuoted(self[i])
    }

    func isBlankLine(_ i: Int) -> Bool {
        if let fast = withLineBytes(i, TextFast.blankFromBytes) { return fast }
        return ReplyExtractor.isBlank(self[i])
    }
}
