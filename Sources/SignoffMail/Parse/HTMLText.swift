/// HTML to plain text for HTML-only replies: block elements become line breaks, blockquote
/// becomes `> ` quoting, entities are decoded, and style/script/head content is dropped.
public enum HTMLText {
    private static let blockTags: Set<String> = [
        "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
        "hr", "section", "article", "header", "footer", "address", "dl", "dt", "dd", "center",
        "form", "fieldset", "figure", "main", "nav", "aside", "tbody", "thead",
    ]
    private static let droppedTags: Set<String> = ["style", "script", "head", "title", "template", "noscript", "xml"]

    /// Converts an HTML document or fragment to text with LF line ends.
    public static func toText(_ html: String) -> String {
        var writer = Writer()
        let s = Array(html.unicodeScalars)
        var i = 0
        var dropping: String? = nil
        var preDepth = 0
        while i < s.count {
            let c = s[i]
            if c == "<" {
                // comment
                if i + 3 < s.count, s[i + 1] == "!", s[i + 2] == "-", s[i + 3] == "-" {
                    var j = i + 4
                    while j + 2 < s.count, !(s[j] == "-" && s[j + 1] == "-" && s[j + 2] == ">") { j += 1 }
                    i = min(s.count, j + 3)
                    continue
                }
                guard let tag = readTag(s, &i) else { if dropping == nil { writer.text("<", pre: preDepth > 0) }; i += 1; continue }
                if let d = dropping {
                    if tag.closing && tag.name == d { dropping = nil }
                    continue
                }
                if droppedTags.contains(tag.name), !tag.closing, !tag.selfClosing { dropping = tag.name; continue }
                switch tag.name {
                case "br": writer.lineBreak()
                case "blockquote":
                    writer.blockBoundary()
                    writer.depth = max(0, writer.depth + (tag.closing ? -1 : 1))
                case "pre":
                    writer.blockBoundary()
                    preDepth = max(0, preDepth + (tag.closing ? -1 : 1))
                case "td", "th":
                    if !tag.closing { writer.text(" ", pre: false) }
                default:
                    if blockTags.contains(tag.name) { writer.blockBoundary() }
                }
                continue
            }
            if dropping != nil { i += 1; continue }
            if c == "&" {
                let (decoded, next) = decodeEntity(s, i)
                writer.text(decoded, pre: preDepth > 0)
                i = next
                continue
            }
            writer.text(String(c), pre: preDepth > 0)
            i += 1
        }
        return writer.finish()
    }

    private struct Tag { var name: String; var closing: Bool; var selfClosing: Bool }

    /// Reads `<name ...>` at `i`; on success `i` is after `>`.
    private static func readTag(_ s: [Unicode.Scalar], _ i: inout Int) -> Tag? {
        var j = i + 1
        var closing = false
        if j < s.count, s[j] == "/" { closing = true; j += 1 }
        if j < s.count, s[j] == "!" || s[j] == "?" {
            // doctype, CDATA, processing instruction: skip to '>'
            while j < s.count, s[j] != ">" { j += 1 }
            i = min(s.count, j + 1)
            return Tag(name: "!", closing: false, selfClosing: true)
        }
        var name = ""
        while j < s.count, s[j].properties.isAlphabetic || ("0"..."9").contains(s[j]) || s[j] == ":" || s[j] == "-" {
            name.unicodeScalars.append(s[j]); j += 1
        }
        guard !name.isEmpty else { return nil }
        var quote: Unicode.Scalar? = nil
        var selfClosing = false
        while j < s.count {
            let c = s[j]
            if let q = quote { if c == q { quote = nil } }
            else if c == "\"" || c == "'" { quote = c }
            else if c == ">" { break }
            j += 1
        }
        if j > 0, j - 1 < s.count, s[j - 1] == "/" { selfClosing = true }
        i = min(s.count, j + 1)
        if let colon = name.lastIndex(of: ":") { name = String(name[name.index(after: colon)...]) }   // o:p, v:shape
        return Tag(name: name.lowercased(), closing: closing, selfClosing: selfClosing)
    }

    private static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}", "copy": "©", "reg": "®",
        "hellip": "…", "mdash": "—", "ndash": "–", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”",
        "laquo": "«", "raquo": "»", "euro": "€", "pound": "£", "yen": "¥", "cent": "¢", "sect": "§",
        "deg": "°", "middot": "·", "bull": "•", "times": "×", "divide": "÷", "trade": "™", "zwnj": "\u{200C}",
        "zwj": "\u{200D}", "shy": "\u{AD}", "iexcl": "¡", "iquest": "¿", "auml": "ä", "ouml": "ö", "uuml": "ü",
        "Auml": "Ä", "Ouml": "Ö", "Uuml": "Ü", "szlig": "ß", "eacute": "é", "egrave": "è", "ecirc": "ê",
        "agrave": "à", "aacute": "á", "acirc": "â", "ccedil": "ç", "oacute": "ó", "ograve": "ò", "ocirc": "ô",
        "iacute": "í", "icirc": "î", "uacute": "ú", "ugrave": "ù", "ucirc": "û", "ntilde": "ñ", "Eacute": "É",
        "aring": "å", "Aring": "Å", "oslash": "ø", "Oslash": "Ø", "aelig": "æ", "AElig": "Æ", "ensp": " ", "emsp": " ", "thinsp": " ",
    ]

    private static func decodeEntity(_ s: [Unicode.Scalar], _ i: Int) -> (String, Int) {
        var j = i + 1
        var name = ""
        while j < s.count, j - i <= 32, s[j] != ";", s[j].properties.isAlphabetic || ("0"..."9").contains(s[j]) || s[j] == "#" {
            name.unicodeScalars.append(s[j]); j += 1
        }
        let end = (j < s.count && s[j] == ";") ? j + 1 : j
        if name.hasPrefix("#") {
            let digits = name.dropFirst()
            let value: UInt32? = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            if let v = value {
                let scalar = Unicode.Scalar(v == 0 ? 0xFFFD : v) ?? "\u{FFFD}"
                return (String(scalar), end)
            }
        } else if let e = entities[name] {
            return (e, end)
        }
        return ("&", i + 1)
    }

    private struct Writer {
        var lines: [(depth: Int, text: String)] = []
        var current = ""
        var currentDepth = 0
        var depth = 0
        var pendingSpace = false

        mutating func text(_ t: String, pre: Bool) {
            for ch in t {
                if pre {
                    if ch == "\n" { lineBreak() } else { append(ch) }
                    continue
                }
                if ch.isWhitespace && ch != "\u{A0}" {
                    pendingSpace = !current.isEmpty
                } else {
                    if pendingSpace { current.append(" "); pendingSpace = false }
                    append(ch == "\u{A0}" ? " " : ch)
                }
            }
        }
        private mutating func append(_ ch: Character) {
            if current.isEmpty { currentDepth = depth }
            current.append(ch)
        }
        mutating func lineBreak() {
            lines.append((current.isEmpty ? depth : currentDepth, current))
            current = ""
            pendingSpace = false
        }
        mutating func blockBoundary() {
            if !current.isEmpty { lineBreak() }
            pendingSpace = false
        }
        mutating func finish() -> String {
            if !current.isEmpty { lineBreak() }
            var out: [String] = []
            for (d, t) in lines {
                let trimmed = t.reversed().drop(while: { $0 == " " }).reversed()
                let prefix = d > 0 ? String(repeating: ">", count: d) + " " : ""
                out.append(trimmed.isEmpty && d > 0 ? String(repeating: ">", count: d) : prefix + String(trimmed))
            }
            // collapse runs of more than two blank lines
            var collapsed: [String] = []
            var blanks = 0
            for l in out {
                if l.isEmpty { blanks += 1; if blanks > 2 { continue } } else { blanks = 0 }
                collapsed.append(l)
            }
            while collapsed.first?.isEmpty == true { collapsed.removeFirst() }
            while collapsed.last?.isEmpty == true { collapsed.removeLast() }
            return collapsed.joined(separator: "\n")
        }
    }
}
