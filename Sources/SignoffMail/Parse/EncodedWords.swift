import Foundation

/// RFC 2047 encoded-words (`=?charset?B|Q?text?=`) in unstructured header text.
public enum EncodedWords {
    /// Decodes every encoded-word in `text`. Whitespace between two adjacent encoded-words is
    /// dropped (RFC 2047 §6.2); malformed words are left as written.
    public static func decode(_ text: String) -> String {
        // (A byte search: where it finds "=?" and Foundation's search below does not, the loop
        // copies the text unchanged, so the answer is the same.)
        guard TextFast.containsBytes(text, "=?") else { return text }
        var out = ""
        var rest = Substring(text)
        var pendingSpace = ""
        var lastWasEncoded = false
        while !rest.isEmpty {
            guard let start = rest.range(of: "=?") else {
                out += pendingSpace; pendingSpace = ""
                out += rest
                break
            }
            let before = rest[..<start.lowerBound]
            if let (decoded, end) = parseWord(rest[start.lowerBound...]) {
                if lastWasEncoded && before.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }) {
                    // adjacent encoded-words: the whitespace between them is not displayed
                } else {
                    out += pendingSpace
                    out += before
                }
                pendingSpace = ""
                out += decoded
                lastWasEncoded = true
                rest = rest[end...]
            } else {
                out += pendingSpace; pendingSpace = ""
                out += before
                out += "=?"
                lastWasEncoded = false
                rest = rest[start.upperBound...]
            }
        }
        return out
    }

    /// Parses one word at the start of `s`; returns the text and the index after `?=`.
    private static func parseWord(_ s: Substring) -> (String, Substring.Index)? {
        let afterOpen = s.index(s.startIndex, offsetBy: 2)
        guard let q1 = s[afterOpen...].firstIndex(of: "?") else { return nil }
        var charset = String(s[afterOpen..<q1])
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }   // RFC 2231 language
        let encStart = s.index(after: q1)
        guard encStart < s.endIndex else { return nil }
        let enc = s[encStart]
        let q2 = s.index(after: encStart)
        guard q2 < s.endIndex, s[q2] == "?" else { return nil }
        let textStart = s.index(after: q2)
        guard let close = s[textStart...].range(of: "?=") else { return nil }
        let payload = s[textStart..<close.lowerBound]
        if payload.contains(" ") || charset.isEmpty || charset.count > 40 { return nil }
        let bytes: [UInt8]
        switch enc {
        case "B", "b": bytes = TransferEncoding.decodeBase64(Array(payload.utf8)[...])
        case "Q", "q":
            var b: [UInt8] = []
            let u = Array(payload.utf8)
            var i = 0
            while i < u.count {
                if u[i] == 0x5F { b.append(0x20); i += 1 }
                else if u[i] == 0x3D, i + 2 < u.count, let h = hexValue(u[i + 1]), let l = hexValue(u[i + 2]) {
                    b.append(h << 4 | l); i += 3
                } else { b.append(u[i]); i += 1 }
            }
            bytes = b
        default: return nil
        }
        return (Charsets.decode(bytes, charset: charset), close.upperBound)
    }
}
