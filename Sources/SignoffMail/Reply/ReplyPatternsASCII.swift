/// Byte-level versions of the reply extractor's patterns for plain ASCII lines (printable ASCII
/// and tabs only). On such a line each function gives exactly the answer of the corresponding
/// case-insensitive ICU pattern in `ReplyExtractor`; any other line goes to the pattern itself.
enum ReplyPatternsASCII {
    typealias Bytes = UnsafeBufferPointer<UInt8>

    /// Runs `body` on the bytes of `s` when it is a plain ASCII line; nil otherwise.
    @inline(__always)
    static func withPlainASCII<T>(_ s: String, _ body: (Bytes) -> T) -> T? {
        var copy = s
        return copy.withUTF8 { u -> T? in
            for b in u where !(b >= 0x20 && b < 0x7F) && b != 0x09 { return nil }
            return body(u)
        }
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
    @inline(__always) static func isLetter(_ b: UInt8) -> Bool { let l = b | 0x20; return l >= 0x61 && l <= 0x7A }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
    /// ICU `\w` on ASCII.
    @inline(__always) static func isWord(_ b: UInt8) -> Bool { isLetter(b) || isDigit(b) || b == 0x5F }

    /// Whether `u[i...]` starts with `word` (lower-case ASCII), ignoring case.
    @inline(__always)
    static func hasWord(_ u: Bytes, at i: Int, _ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= u.count else { return false }
        let w = word.utf8Start
        for k in 0..<n where lower(u[i + k]) != w[k] { return false }
        return true
    }

    static func skip(_ u: Bytes, from i: Int, while pred: (UInt8) -> Bool) -> Int {
        var j = i
        while j < u.count, pred(u[j]) { j += 1 }
        return j
    }

    // MARK: commands

    private static let commandWords: [StaticString] = ["approve", "approved", "reject", "rejected", "value", "delegate"]

    /// `ReplyExtractor.startsWithCommand` from the bytes, when the bytes it looks at settle it:
    /// after `*`/`_`, a keyword (the whole run of letters), then `*`/`_`/spaces, then nothing or
    /// one of `:-,.`. Nil (the Character path decides) when a non-ASCII byte follows the letter
    /// run, or is or follows the character after the run of `*`/`_`/spaces — there a combining
    /// mark or a non-ASCII letter or separator could change the answer.
    static func startsWithCommand(_ u: Bytes) -> Bool? {
        let start = skip(u, from: 0) { $0 == 0x2A || $0 == 0x5F }
        let end = skip(u, from: start, while: isLetter)
        if end < u.count, u[end] >= 0x80 { return nil }
        guard commandWords.contains(where: { $0.utf8CodeUnitCount == end - start && hasWord(u, at: start, $0) }) else { return false }
        let rest = skip(u, from: end) { $0 == 0x2A || $0 == 0x5F || $0 == 0x20 }
        guard rest < u.count else { return true }
        let c = u[rest]
        if c >= 0x80 || (rest + 1 < u.count && u[rest + 1] >= 0x80) { return nil }
        return c == 0x3A || c == 0x2D || c == 0x2C || c == 0x2E
    }

    // MARK: quote headers

    private static let wroteWords: [StaticString] = [
        "wrote", "writes", "a ecrit", "schrieb", "schreef", "geschreven", "skrev", "escribio", "ha scritto", "scrisse",
        "escreveu", "napisal", "napisal(a)", "kirjoitti", "irta", "napsal", "napsala", "yazdi", "kirjutas", "a scris", "pisze", "skriver",
    ]

    /// `wroteWord`: one of the verbs as a whole word.
    static func wroteWord(_ u: Bytes) -> Bool {
        for i in 0..<u.count where i == 0 || !isLetter(u[i - 1]) {
            // every verb starts with one of these letters
            switch lower(u[i]) {
            case UInt8(ascii: "w"), UInt8(ascii: "a"), UInt8(ascii: "s"), UInt8(ascii: "e"), UInt8(ascii: "h"), UInt8(ascii: "n"),
                 UInt8(ascii: "k"), UInt8(ascii: "i"), UInt8(ascii: "y"), UInt8(ascii: "p"), UInt8(ascii: "g"):
                break
            default:
                continue
            }
            for w in wroteWords where hasWord(u, at: i, w) {
                let end = i + w.utf8CodeUnitCount
                if end == u.count || !isLetter(u[end]) { return true }
            }
        }
        return false
    }

    /// `headerEnd`: ends with `:`, `wrote` or `--`, then optional spaces.
    static func headerEnd(_ u: Bytes) -> Bool {
        var e = u.count
        while e > 0, isSpace(u[e - 1]) { e -= 1 }
        guard e > 0 else { return false }
        if u[e - 1] == 0x3A { return true }
        if e >= 2, u[e - 1] == 0x2D, u[e - 2] == 0x2D { return true }
        return e >= 5 && hasWord(u, at: e - 5, "wrote")
    }

    /// `shapeRegex`: an `@`, a time `d:dd`, or a year 19xx/20xx as a whole word.
    static func shape(_ u: Bytes) -> Bool {
        let n = u.count
        for i in 0..<n {
            let b = u[i]
            if b == 0x40 { return true }
            if b == 0x3A, i >= 1, isDigit(u[i - 1]), i + 2 < n, isDigit(u[i + 1]), isDigit(u[i + 2]) { return true }
            if i + 4 <= n, (u[i] == 0x31 && u[i + 1] == 0x39) || (u[i] == 0x32 && u[i + 1] == 0x30),
               isDigit(u[i + 2]), isDigit(u[i + 3]), i == 0 || !isWord(u[i - 1]), i + 4 == n || !isWord(u[i + 4]) {
                return true
            }
        }
        return false
    }

    private static let leadWords: [StaticString] = [
        "on", "le", "am", "el", "il", "op", "den", "d.", "em", "w dniu", "dnia", "citando", "quoting", "el dia", "in data", "a las",
    ]

    /// `leadRegex`: after `>` and spaces, a digit, or a lead word not followed by a letter.
    static func lead(_ u: Bytes) -> Bool {
        let i = skip(u, from: 0) { $0 == 0x3E || isSpace($0) }
        guard i < u.count else { return false }
        if isDigit(u[i]) { return true }
        func wordEnds(_ end: Int) -> Bool { end == u.count || !isLetter(u[end]) }
        for w in leadWords where hasWord(u, at: i, w) && wordEnds(i + w.utf8CodeUnitCount) { return true }
        let dashes = skip(u, from: i) { $0 == 0x2D }
        if dashes - i >= 2 {
            let o = skip(u, from: dashes, while: isSpace)
            if hasWord(u, at: o, "on") && wordEnds(o + 2) { return true }
        }
        return false
    }

    /// `isHeader`: a verb, a header end, and a date/address shape or a lead word.
    static func isHeader(_ u: Bytes) -> Bool {
        headerEnd(u) && wroteWord(u) && (shape(u) || lead(u))
    }

    /// `dateFirst` can only match a line starting with a digit (any digit, so only ASCII
    /// non-digits rule it out).
    static func cannotBeDateFirst(_ s: String) -> Bool {
        guard let f = s.utf8.first else { return true }
        return f < 0x80 && !isDigit(f)
    }

    // MARK: signatures and separators

    /// `signatureRegex` is anchored at the start, and every alternative starts with `-`, `_`
    /// or one of these letters (or a non-ASCII character).
    static func cannotBeSignature(_ trimmed: String) -> Bool {
        guard let f = trimmed.utf8.first else { return false }
        guard f < 0x80 else { return false }
        switch lower(f) {
        case 0x2D, 0x5F, UInt8(ascii: "s"), UInt8(ascii: "e"), UInt8(ascii: "i"), UInt8(ascii: "v"), UInt8(ascii: "g"),
             UInt8(ascii: "w"), UInt8(ascii: "d"), UInt8(ascii: "f"):
            return false
        default:
            return true
        }
    }

    private static let separatorPhrases: [StaticString] = [
        "original message", "original-nachricht", "ursprungliche nachricht", "message d'origine", "mensaje original",
        "messaggio originale", "oorspronkelijk bericht", "originalmeddelande", "opprinnelig melding", "oprindelig meddelelse",
        "alkuperainen viesti", "wiadomosc oryginalna", "mensagem original", "forwarded message", "weitergeleitete nachricht",
        "message transfere", "mensaje reenviado", "messaggio inoltrato", "doorgestuurd bericht",
    ]

    /// A run of two or more of one of `-`, `_`, `=` starting at `i`: its end, else nil.
    private static func ruleRun(_ u: Bytes, at i: Int) -> Int? {
        guard i < u.count, u[i] == 0x2D || u[i] == 0x5F || u[i] == 0x3D else { return nil }
        let c = u[i]
        let end = skip(u, from: i) { $0 == c }
        return end - i >= 2 ? end : nil
    }

    /// `separatorRegex` (on the line with `*` and spaces trimmed off both ends).
    static func separator(_ u: Bytes) -> Bool {
        // ^[>\s]*(rule)?\s*PHRASE\s*(rule)?\s*$
        var i = skip(u, from: 0) { $0 == 0x3E || isSpace($0) }
        if i < u.count, u[i] == 0x2D || u[i] == 0x5F || u[i] == 0x3D {
            guard let end = ruleRun(u, at: i) else { return tail(u) }
            i = end
        }
        i = skip(u, from: i, while: isSpace)
        for p in separatorPhrases where hasWord(u, at: i, p) {
            var j = skip(u, from: i + p.utf8CodeUnitCount, while: isSpace)
            if let end = ruleRun(u, at: j) { j = skip(u, from: end, while: isSpace) }
            if j == u.count { return true }
        }
        return tail(u)
    }

    /// The anchored alternatives: `begin forwarded message:?`, `anfang der weitergeleiteten
    /// nachricht:?`, `debut du message reexpedie\s*:?`.
    private static func tail(_ u: Bytes) -> Bool {
        for p: StaticString in ["begin forwarded message", "anfang der weitergeleiteten nachricht"] where hasWord(u, at: 0, p) {
            let n = p.utf8CodeUnitCount
            if u.count == n || (u.count == n + 1 && u[n] == 0x3A) { return true }
        }
        let p: StaticString = "debut du message reexpedie"
        if hasWord(u, at: 0, p) {
            var j = skip(u, from: p.utf8CodeUnitCount, while: isSpace)
            if j < u.count, u[j] == 0x3A { j += 1 }
            if j == u.count { return true }
        }
        return false
    }

    // MARK: Outlook header blocks

    private static let fromWords: [StaticString] = ["from", "von", "de", "van", "da", "fra", "od", "mittente", "lahettaja", "kimden"]

    /// `fromKey`: after `>`/spaces and an optional `*`, a From label, then `:`.
    static func fromKey(_ u: Bytes) -> Bool {
        var i = skip(u, from: 0) { $0 == 0x3E || isSpace($0) }
        if i < u.count, u[i] == 0x2A { i += 1 }
        i = skip(u, from: i, while: isSpace)
        for w in fromWords where hasWord(u, at: i, w) {
            var j = skip(u, from: i + w.utf8CodeUnitCount, while: isSpace)
            if j < u.count, u[j] == 0x2A { j += 1 }
            j = skip(u, from: j, while: isSpace)
            if j < u.count, u[j] == 0x3A { return true }
        }
        return false
    }
}
