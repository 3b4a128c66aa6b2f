import Foundation

/// Header-field writing for outbound mail: RFC 2047 encoded words, display names, folding.
enum HeaderEncoding {
    /// Characters that force a display name into a quoted-string (RFC 5322 `specials`).
    private static let specials = Set("()<>[]:;@\\,.\"")

    /// Whether `text` can go into a header as is: printable ASCII and spaces only.
    static func isPlainASCII(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// RFC 2047 `B` encoded words for `text`, each at most 75 characters, never splitting a
    /// UTF-8 character; joined by a folding space (CRLF SP) so long values fold.
    static func encodedWords(_ text: String) -> [String] {
        // 36 raw bytes → 48 base64 characters → 60-character words, so even the first word
        // after `Subject: ` stays under 78 columns (RFC 2047 allows 75).
        let maxBytes = 36
        var words: [String] = []
        var chunk = [UInt8]()
        for character in text {
            let bytes = Array(String(character).utf8)
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
    static func unstructured(name: String, value: String) -> String {
        let clean = value.replacingOccurrences(of: "\r\n", with: " ")
            .replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        let words: [String]
        if isPlainASCII(clean), !clean.contains("=?"),
           clean.split(separator: " ").allSatisfy({ $0.utf8.count <= 70 }) {
            words = clean.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            return fold(name: name, words: words, separator: " ")
        }
        return fold(name: name, words: encodedWords(clean), separator: " ")
    }

    /// `Name <address>` as foldable words, the display name quoted or encoded as needed.
    static func mailbox(_ address: EmailAddress) -> [String] {
        // An address never carries a line break into the header block (no header injection).
        let spec = String(String.UnicodeScalarView(address.address.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
        guard let name = address.displayName?.trimmingCharacters(in: .whitespacesAndNewlines),
              !name.isEmpty else { return [spec] }
        return phrase(name) + ["<" + spec + ">"]
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
        let flat = name.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if !isPlainASCII(flat) || flat.contains("=?") {
            return encodedWords(flat)
        }
        if flat.contains(where: { specials.contains($0) }) {
            let escaped = flat.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
            return ["\"" + escaped + "\""]
        }
        return flat.split(separator: " ").map(String.init)
    }

    /// A header line (without the final CRLF), folded before 78 columns where possible.
    static func fold(name: String, words: [String], separator: String) -> String {
        var out = name + ":"
        var column = out.utf8.count
        for (i, word) in words.enumerated() {
            let sep = i == 0 ? " " : separator
            if column + sep.utf8.count + word.utf8.count > 78, column > name.utf8.count + 1 {
                out += "\r\n " + word
                column = 1 + word.utf8.count
            } else {
                out += sep + word
                column += sep.utf8.count + word.utf8.count
            }
        }
        return out
    }
}
