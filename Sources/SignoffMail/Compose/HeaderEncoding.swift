import Foundation

/// Header-field writing for outbound mail: RFC 2047 encoded words, display names, folding.
/// Fields are written word by word straight into the message's bytes; the common case (ASCII
/// values without line breaks) makes no intermediate String and never goes through Foundation.
enum HeaderEncoding {
    /// Bytes that force a display name into a quoted-string (RFC 5322 `specials`).
    private static func isSpecial(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x28, 0x29, 0x3C, 0x3E, 0x5B, 0x5D, 0x3A, 0x3B, 0x40, 0x5C, 0x2C, 0x2E, 0x22: return true
        default: return false
        }
    }

    /// `body` over the UTF-8 of `text` in place (a copy only for a bridged, non-contiguous string).
    @inline(__always) private static func utf8<R>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = text
        return copy.withUTF8(body)
    }

    /// Whether `text` can go into a header as is: printable ASCII and spaces only.
    static func isPlainASCII(_ text: String) -> Bool {
        utf8(text) { bytes in
            for byte in bytes where byte < 0x20 || byte >= 0x7F { return false }
            return true
        }
    }

    private static func hasLineBreak(_ text: String) -> Bool {
        utf8(text) { bytes in
            for byte in bytes where byte == 0x0D || byte == 0x0A { return true }
            return false
        }
    }

    /// Whether `text` contains `=?` (which would read as the start of an encoded word).
    private static func hasEncodedWordStart(_ text: String) -> Bool {
        utf8(text) { bytes in
            var previous: UInt8 = 0
            for byte in bytes {
                if previous == 0x3D, byte == 0x3F { return true }
                previous = byte
            }
            return false
        }
    }

    /// `text` with CR LF, LF and CR each replaced by one space.
    private static func flattened(_ text: String) -> String {
        guard hasLineBreak(text) else { return text }
        return text.replacingOccurrences(of: "\r\n", with: " ")
            .replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    /// Writes one header line word by word: `Name:`, then each word after a space, or after
    /// CRLF SP when it would pass 78 columns (and something is on the line already).
    struct Folder {
        let nameWidth: Int
        var column: Int

        init(name: String, into out: inout [UInt8]) {
            out.append(contentsOf: name.utf8)
            out.append(0x3A)
            nameWidth = name.utf8.count + 1
            column = nameWidth
        }

        /// Starts a word of `width` bytes; the caller appends its bytes.
        @inline(__always) mutating func startWord(width: Int, into out: inout [UInt8]) {
            if column + 1 + width > 78, column > nameWidth {
                out.append(0x0D)
                out.append(0x0A)
                column = 1 + width
            } else {
                column += 1 + width
            }
            out.append(0x20)
        }

        mutating func word(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
            startWord(width: bytes.count, into: &out)
            out.append(contentsOf: bytes)
        }

        mutating func word(_ text: String, into out: inout [UInt8]) {
            startWord(width: text.utf8.count, into: &out)
            out.append(contentsOf: text.utf8)
        }

        /// Ends the header line.
        func end(into out: inout [UInt8]) {
            out.append(0x0D)
            out.append(0x0A)
        }
    }

    private static let base64: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Writes `=?UTF-8?B?…?=` for `bytes` (padded base64, as `Data.base64EncodedString()`).
    private static func encodedWord(_ bytes: UnsafeBufferPointer<UInt8>, _ folder: inout Folder, into out: inout [UInt8]) {
        let prefix: StaticString = "=?UTF-8?B?"
        folder.startWord(width: 12 + (bytes.count + 2) / 3 * 4, into: &out)
        out.append(contentsOf: UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
        let alphabet = base64.utf8Start
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18)])
            out.append(alphabet[Int(v >> 12 & 0x3F)])
            out.append(alphabet[Int(v >> 6 & 0x3F)])
            out.append(alphabet[Int(v & 0x3F)])
            i += 3
        }
        if i < bytes.count {
            let second = i + 1 < bytes.count
            let v = UInt32(bytes[i]) << 16 | (second ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(v >> 18)])
            out.append(alphabet[Int(v >> 12 & 0x3F)])
            out.append(second ? alphabet[Int(v >> 6 & 0x3F)] : 0x3D)
            out.append(0x3D)
        }
        out.append(0x3F)
        out.append(0x3D)
    }

    /// RFC 2047 `B` encoded words for `text`, each at most 75 characters, never splitting a
    /// Character (so never a UTF-8 sequence); a folding space (CRLF SP) between them as needed.
    static func encodedWords(_ text: String, _ folder: inout Folder, into out: inout [UInt8]) {
        // 36 raw bytes → 48 base64 characters → 60-character words, so even the first word
        // after `Subject: ` stays under 78 columns (RFC 2047 allows 75).
        let maxBytes = 36
        var text = text
        if text.utf8.allSatisfy({ $0 < 0x80 && $0 != 0x0D }) {
            // ASCII without CR: every Character is one byte.
            text.withUTF8 { bytes in
                var start = 0
                repeat {
                    let end = min(bytes.count, start + maxBytes)
                    encodedWord(UnsafeBufferPointer(rebasing: bytes[start..<end]), &folder, into: &out)
                    start = end
                } while start < bytes.count
            }
            return
        }
        let characters = text
        let utf8 = characters.utf8
        text.withUTF8 { bytes in
            var chunkStart = 0, chunkEnd = 0
            var index = characters.startIndex
            while index < characters.endIndex {
                let next = characters.index(after: index)
                let count = utf8.distance(from: index, to: next)
                if chunkEnd - chunkStart + count > maxBytes, chunkEnd > chunkStart {
                    encodedWord(UnsafeBufferPointer(rebasing: bytes[chunkStart..<chunkEnd]), &folder, into: &out)
                    chunkStart = chunkEnd
                }
                chunkEnd += count
                index = next
            }
            encodedWord(UnsafeBufferPointer(rebasing: bytes[chunkStart..<chunkEnd]), &folder, into: &out)
        }
    }

    /// The unstructured value of a header such as `Subject`, folded: plain ASCII is folded at
    /// spaces; anything else (or an ASCII word too long to fold) becomes encoded words.
    static func unstructured(name: String, value: String, into out: inout [UInt8]) {
        var clean = flattened(value)
        var folder = Folder(name: name, into: &out)
        let plain = clean.withUTF8 { bytes -> Bool in
            // Printable ASCII, no `=?`, no space-separated word over 70 bytes.
            var previous: UInt8 = 0
            var run = 0
            for byte in bytes {
                guard byte >= 0x20, byte < 0x7F, !(previous == 0x3D && byte == 0x3F) else { return false }
                if byte == 0x20 {
                    run = 0
                } else {
                    run += 1
                    if run > 70 { return false }
                }
                previous = byte
            }
            var start = 0
            for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x20 {
                folder.word(UnsafeBufferPointer(rebasing: bytes[start..<i]), into: &out)
                start = i + 1
            }
            return true
        }
        if !plain { encodedWords(clean, &folder, into: &out) }
        folder.end(into: &out)
    }

    /// A header of mailboxes (`From`, `To`, `Reply-To`) separated by commas, folded.
    static func addressField(name: String, _ list: [EmailAddress], into out: inout [UInt8]) {
        var folder = Folder(name: name, into: &out)
        for (i, address) in list.enumerated() {
            mailbox(address, comma: i < list.count - 1, &folder, into: &out)
        }
        folder.end(into: &out)
    }

    /// A header of one mailbox, folded.
    static func addressField(name: String, _ address: EmailAddress, into out: inout [UInt8]) {
        var folder = Folder(name: name, into: &out)
        mailbox(address, comma: false, &folder, into: &out)
        folder.end(into: &out)
    }

    /// `Name <address>` as foldable words, the display name quoted or encoded as needed, and a
    /// comma after the last word when another mailbox follows.
    private static func mailbox(_ address: EmailAddress, comma: Bool, _ folder: inout Folder, into out: inout [UInt8]) {
        // An address never carries a line break into the header block (no header injection).
        let spec = hasLineBreak(address.address)
            ? String(String.UnicodeScalarView(address.address.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
            : address.address
        let commaWidth = comma ? 1 : 0
        guard let name = trimmed(address.displayName), !name.isEmpty else {
            folder.startWord(width: spec.utf8.count + commaWidth, into: &out)
            out.append(contentsOf: spec.utf8)
            if comma { out.append(0x2C) }
            return
        }
        phrase(name, &folder, into: &out)
        folder.startWord(width: spec.utf8.count + 2 + commaWidth, into: &out)
        out.append(0x3C)
        out.append(contentsOf: spec.utf8)
        out.append(0x3E)
        if comma { out.append(0x2C) }
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

    /// A display name as an RFC 5322 phrase: atoms as is, quoted-string for specials, encoded
    /// words for non-ASCII.
    private static func phrase(_ name: String, _ folder: inout Folder, into out: inout [UInt8]) {
        var flat = hasLineBreak(name)
            ? name.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") : name
        if !isPlainASCII(flat) || hasEncodedWordStart(flat) {
            encodedWords(flat, &folder, into: &out)
            return
        }
        flat.withUTF8 { bytes in
            var hasSpecial = false, escapes = 0
            for byte in bytes where isSpecial(byte) {
                hasSpecial = true
                if byte == 0x5C || byte == 0x22 { escapes += 1 }
            }
            if hasSpecial {
                // Quoted-string, backslash and double quote escaped.
                folder.startWord(width: bytes.count + escapes + 2, into: &out)
                out.append(0x22)
                for byte in bytes {
                    if byte == 0x5C || byte == 0x22 { out.append(0x5C) }
                    out.append(byte)
                }
                out.append(0x22)
                return
            }
            // Atoms: split at spaces, runs of spaces as one.
            var start = 0
            for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x20 {
                if i > start { folder.word(UnsafeBufferPointer(rebasing: bytes[start..<i]), into: &out) }
                start = i + 1
            }
        }
    }

    /// Writes a header line of `words` and its CRLF, folded before 78 columns where possible.
    static func fold(name: String, words: [String], into out: inout [UInt8]) {
        var folder = Folder(name: name, into: &out)
        for word in words { folder.word(word, into: &out) }
        folder.end(into: &out)
    }
}
