import Foundation

/// Header-field writing for outbound mail: RFC 2047 encoded words, display names, folding.
/// Fields are written straight into the message's bytes; the common case (ASCII values without
/// line breaks) never goes through Foundation.
enum HeaderEncoding {
    /// Bytes that force a display name into a quoted-string (RFC 5322 `specials`).
    private static func isSpecial(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x28, 0x29, 0x3C, 0x3E, 0x5B, 0x5D, 0x3A, 0x3B, 0x40, 0x5C, 0x2C, 0x2E, 0x22: return true
        default: return false
        }
    }

    /// Whether `text` can go into a header as is: printable ASCII and spaces only.
    static func isPlainASCII(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    private static func hasLineBreak(_ text: String) -> Bool {
        text.utf8.contains { $0 == 0x0D || $0 == 0x0A }
    }

    /// Whether `text` contains `=?` (which would read as the start of an encoded word).
    private static func hasEncodedWordStart(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if previous == 0x3D, byte == 0x3F { return true }
            previous = byte
        }
        return false
    }

    /// `text` with CR LF, LF and CR each replaced by one space.
    private static func flattened(_ text: String) -> String {
        guard hasLineBreak(text) else { return text }
        return text.replacingOccurrences(of: "\r\n", with: " ")
            .replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    /// RFC 2047 `B` encoded words for `text`, each at most 75 characters, never splitting a
    /// UTF-8 character; joined by a folding space (CRLF SP) so long values fold.
    static func encodedWords(_ text: String) -> [String] {
        // 36 raw bytes → 48 base64 characters → 60-character words, so even the first word
        // after `Subject: ` stays under 78 columns (RFC 2047 allows 75).
        let maxBytes = 36
        var words: [String] = []
        var chunk = [UInt8]()
        chunk.reserveCapacity(maxBytes + 16)
        for character in text {
            let bytes = character.utf8
            if chunk.count + bytes.count > maxBytes, !chunk.isEmpty {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk.removeAll(keepingCapacity: true)
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty || words.isEmpty {
            words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
        }
        return words
    }

    /// The unstructured value of a header such as `Subject`, folded: plain ASCII is folded at
    /// spaces; anything else (or an ASCII word too long to fold) becomes encoded words.
    static func unstructured(name: String, value: String, into out: inout [UInt8]) {
        let clean = flattened(value)
        if isPlainASCII(clean), !hasEncodedWordStart(clean),
           clean.utf8.split(separator: 0x20).allSatisfy({ $0.count <= 70 }) {
            let words = clean.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            fold(name: name, words: words, into: &out)
            return
        }
        fold(name: name, words: encodedWords(clean), into: &out)
    }

    /// `Name <address>` as foldable words, the display name quoted or encoded as needed.
    static func mailbox(_ address: EmailAddress) -> [String] {
        // An address never carries a line break into the header block (no header injection).
        let spec = hasLineBreak(address.address)
            ? String(String.UnicodeScalarView(address.address.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
            : address.address
        guard let name = trimmed(address.displayName), !name.isEmpty else { return [spec] }
        return phrase(name) + ["<" + spec + ">"]
    }

    /// `name` without leading and trailing whitespace and newlines (Foundation only when an end
    /// is not plain ASCII).
    private static func trimmed(_ name: String?) -> String? {
        guard let name else { return nil }
        let utf8 = name.utf8
        guard let first = utf8.first, let last = utf8.last else { return name }
        func plain(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }
        if plain(first), plain(last) { return name }
        return name.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Mailboxes separated by commas, as foldable words.
    static func addressList(_ list: [EmailAddress]) -> [String] {
        var words: [String] = []
        for (i, address) in list.enumerated() {
            var w = mailbox(address)
            if i < list.count - 1 { w[w.count - 1] += "," }
            words += w
        }
        return words
    }

    /// A display name as an RFC 5322 phrase: atoms as is, quoted-string for specials, encoded
    /// words for non-ASCII.
    static func phrase(_ name: String) -> [String] {
        let flat = hasLineBreak(name)
            ? name.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") : name
        if !isPlainASCII(flat) || hasEncodedWordStart(flat) {
            return encodedWords(flat)
        }
        if flat.utf8.contains(where: isSpecial) {
            var escaped = [UInt8]([0x22])
            for byte in flat.utf8 {
                if byte == 0x5C || byte == 0x22 { escaped.append(0x5C) }
                escaped.append(byte)
            }
            escaped.append(0x22)
            return [String(decoding: escaped, as: UTF8.self)]
        }
        return flat.split(separator: " ").map(String.init)
    }

    /// Writes a header line and its CRLF, folded before 78 columns where possible.
    static func fold(name: String, words: [String], into out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(0x3A)
        let nameWidth = name.utf8.count + 1
        var column = nameWidth
        for word in words {
            let width = word.utf8.count
            if column + 1 + width > 78, column > nameWidth {
                out.append(0x0D)
                out.append(0x0A)
                column = 1 + width
            } else {
                column += 1 + width
            }
            out.append(0x20)
            out.append(contentsOf: word.utf8)
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// A header line (without the final CRLF), folded before 78 columns where possible.
    static func fold(name: String, words: [String]) -> String {
        var out = [UInt8]()
        fold(name: name, words: words, into: &out)
        return String(decoding: out.dropLast(2), as: UTF8.self)
    }
}
