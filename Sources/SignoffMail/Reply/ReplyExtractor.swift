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
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var kept = Array(lines[..<cutIndex(lines)])
        // A quote block at the end (with nothing typed after it) is not part of the reply.
        if let lastOwn = kept.lastIndex(where: { !isQuoted($0) && !isBlank($0) }) {
            kept = Array(kept[...lastOwn])
        } else {
            kept = []
        }
        while let last = kept.last, isBlank(last) || isSeparatorOnly(last) { kept.removeLast() }
        while let first = kept.first, isBlank(first) { kept.removeFirst() }
        return kept.map { $0.replacingOccurrences(of: #"[ \t]+$"#, with: "", options: .regularExpression) }.joined(separator: "\n")
    }

    /// The index of the first line that is not part of the reply (lines.count when none).
    public static func cutIndex(_ lines: [String]) -> Int {
        for i in lines.indices {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if trimmed.lowercased().contains("reply above this line") { return i }
            if isSignatureStart(trimmed) { return i }
            if isOriginalMessageSeparator(trimmed) { return i }
            if isQuoteHeader(lines, at: i) { return i }
            if isHeaderBlock(lines, at: i) { return i }
        }
        return lines.count
    }

    /// Whether the line at `i` ends the reply because of what it says (a quote header,
    /// a separator, a header block, a signature or our marker). Used by the grammar to end a
    /// reason.
    public static func endsReply(_ lines: [String], at i: Int) -> Bool {
        let trimmed = lines[i].trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return false }
        return trimmed.lowercased().contains("reply above this line") || isSignatureStart(trimmed)
            || isOriginalMessageSeparator(trimmed) || isQuoteHeader(lines, at: i) || isHeaderBlock(lines, at: i)
            || isQuoted(lines[i])
    }

    static func isBlank(_ s: String) -> Bool { s.allSatisfy { $0.isWhitespace } }
    static func isQuoted(_ s: String) -> Bool { s.drop(while: { $0 == " " }).first == ">" }

    static func isSeparatorOnly(_ s: String) -> Bool {
        let chars = s.filter { !$0.isWhitespace }
        return !chars.isEmpty && chars.allSatisfy { "-_=*#~+—–ᐧ.".contains($0) }
    }

    // MARK: signatures

    private static let signatureRegex = try! NSRegularExpression(pattern: [
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
        if trimmedLine.count > 90 { return false }
        let r = NSRange(trimmedLine.startIndex..., in: trimmedLine)
        return signatureRegex.firstMatch(in: trimmedLine, range: r) != nil
    }

    // MARK: separators

    private static let separatorRegex = try! NSRegularExpression(pattern:
        #"^[>\s]*(-{2,}|_{2,}|={2,})?\s*(original message|original-nachricht|urspr[üu]ngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|oprindelig meddelelse|alkuper[äa]inen viesti|wiadomo[śs][ćc] oryginalna|исходное сообщение|mensagem original|forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение|原始邮件|原始郵件)\s*(-{2,}|_{2,}|={2,})?\s*$|^begin forwarded message:?$|^anfang der weitergeleiteten nachricht:?$|^d[ée]but du message r[ée]exp[ée]di[ée]\s*:?$"#,
        options: [.caseInsensitive])

    static func isOriginalMessageSeparator(_ trimmedLine: String) -> Bool {
        guard trimmedLine.count < 120 else { return false }
        let r = NSRange(trimmedLine.startIndex..., in: trimmedLine)
        return separatorRegex.firstMatch(in: trimmedLine, range: r) != nil
    }

    // MARK: quote headers

    private static let wroteRegex = try! NSRegularExpression(pattern:
        #"(wrote|writes|a [ée]crit|schrieb|schreef|skrev|escribi[óo]|ha scritto|scrisse|escreveu|napisa[lł](\(a\))?|написал(а|\(а\))?|написав(ла)?|kirjoitti|[íi]rta|napsal(a)?|yazd[ıi]|έγραψε|kirjutas|rakstīja|parašė|写道|寫道|wrote on .*|a scris|pisze|skriver|skrifaði)\s*[:：]?\s*$"#,
        options: [.caseInsensitive])
    private static let leadRegex = try! NSRegularExpression(pattern:
        #"^[>\s]*(on|le|am|el|il|op|den|d\.|på|em|w dniu|dnia|citando|quoting|в|у|на|el d[íi]a|in data|a las|на|在|於|\d)"#,
        options: [.caseInsensitive])

    static func isQuoteHeader(_ lines: [String], at i: Int) -> Bool {
        let first = lines[i].trimmingCharacters(in: .whitespaces)
        if matchesWrote(first) { return plausibleHeader(first) }
        // wrapped over two (or three) lines: "On Mon, … Name <" / "name@example.org> wrote:"
        guard first.count < 200, matches(leadRegex, first) else { return false }
        var joined = first
        var j = i + 1
        while j < lines.count, j <= i + 2 {
            let next = lines[j].trimmingCharacters(in: .whitespaces)
            if next.isEmpty { break }
            joined += " " + next
            if matchesWrote(joined) { return plausibleHeader(joined) }
            j += 1
        }
        return false
    }

    private static func matchesWrote(_ s: String) -> Bool { s.count < 400 && matches(wroteRegex, s) }

    /// A quote header names a date, an address or a person; a bare "as you wrote:" in a
    /// sentence must say more than that to count.
    private static func plausibleHeader(_ s: String) -> Bool {
        s.contains(where: { $0.isNumber }) || s.contains("@") || matches(leadRegex, s)
    }

    private static func matches(_ regex: NSRegularExpression, _ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    // MARK: Outlook header blocks

    private static let fromKey = try! NSRegularExpression(pattern:
        #"^[>\s]*\*?\s*(from|von|de|van|da|fra|från|od|от|від|mittente|l[äa]hett[äa]j[äa]|feladó|kimden|发件人|寄件者|差出人)\s*\*?\s*[:：]"#,
        options: [.caseInsensitive])
    private static let otherKey = try! NSRegularExpression(pattern:
        #"^[>\s]*\*?\s*(sent|date|gesendet|datum|envoy[ée]|enviado|fecha|data|inviato|verzonden|sendt|skickat|wys[lł]ano|отправлено|дата|надіслано|发送时间|日期|送信日時|l[äa]hetetty|to|an|à|a|para|aan|til|till|do|кому|subject|betreff|objet|asunto|oggetto|onderwerp|emne|[äa]mne|temat|тема|risposta|cc|收件人|主题)\s*\*?\s*[:：]"#,
        options: [.caseInsensitive])

    static func isHeaderBlock(_ lines: [String], at i: Int) -> Bool {
        guard matches(fromKey, lines[i]) else { return false }
        var seen = 0
        var j = i + 1
        while j < lines.count, j <= i + 6 {
            if matches(otherKey, lines[j]) { seen += 1; if seen >= 1 { return true } }
            else if !isBlank(lines[j]) && seen == 0 && j > i + 2 { return false }
            j += 1
        }
        return false
    }
}
