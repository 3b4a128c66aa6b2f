// The composer's encoders as they were before the byte-level fast paths (commit b1f71c0),
// kept verbatim (renamed) as the reference the fast paths are compared against.
import Crypto
import Foundation
@testable import SignoffMail

/// Quoted-printable encoding (RFC 2045 §6.7) of UTF-8 text for a text body part.
///
/// Line ends in the input (LF, CRLF or CR) become CRLF hard breaks; encoded lines stay at most
/// 76 characters with `=` soft breaks; trailing spaces and tabs, `=`, control bytes and every
/// non-ASCII byte are `=XX`. A leading `.` or `From ` is encoded too, so the body survives
/// dot-stuffing and mbox writers unchanged.
enum ReferenceQuotedPrintable {
    static func encode(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8 + 16)
        encode(text, into: &out)
        return out
    }

    /// Appends the encoding of `text` to `out`: one pass over the UTF-8 bytes into a buffer
    /// sized for the worst case (every byte `=XX`, a soft break per 25 of them, CR → CRLF).
    static func encode(_ text: String, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            let encoded = [UInt8](unsafeUninitializedCapacity: bytes.count * 4 + 16) { buffer, count in
                var w = Writer(base: buffer.baseAddress!)
                var start = 0
                var i = 0
                while i < bytes.count {
                    let byte = bytes[i]
                    if byte == 0x0D || byte == 0x0A {
                        encodeLine(bytes, start, i, into: &w)
                        w.put(0x0D)
                        w.put(0x0A)
                        if byte == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                        start = i + 1
                    }
                    i += 1
                }
                encodeLine(bytes, start, bytes.count, into: &w)
                count = w.count
            }
            out.append(contentsOf: encoded)
        }
    }

    /// Writes into memory already reserved for the worst case.
    private struct Writer {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0
        @inline(__always) mutating func put(_ byte: UInt8) {
            base[count] = byte
            count += 1
        }
    }

    private static let hex: StaticString = "0123456789ABCDEF"

    /// Encodes `bytes[start..<end]`, one input line without its line end.
    private static func encodeLine(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout Writer) {
        guard start < end else { return }
        let hex = ReferenceQuotedPrintable.hex.utf8Start
        // "From " at the start of a line: its 'F' is encoded.
        let startsWithFrom = end - start >= 5 && bytes[start] == 0x46 && bytes[start + 1] == 0x72
            && bytes[start + 2] == 0x6F && bytes[start + 3] == 0x6D && bytes[start + 4] == 0x20
        var column = 0
        let last = end - 1
        for index in start..<end {
            let byte = bytes[index]
            let isLast = index == last
            let mustEncode: Bool
            switch byte {
            case 0x3D: mustEncode = true                                  // '='
            case 0x20, 0x09: mustEncode = isLast                          // trailing whitespace
            case 0x2E: mustEncode = index == start                        // leading '.'
            case 0x46: mustEncode = index == start && startsWithFrom      // "From "
            case 0x21...0x7E: mustEncode = false
            default: mustEncode = true
            }
            let width = mustEncode ? 3 : 1
            // Keep room for the soft break '=' within 76 columns, unless this is the line's last byte.
            let limit = isLast ? 76 : 75
            if column + width > limit {
                out.put(0x3D)
                out.put(0x0D)
                out.put(0x0A)
                column = 0
            }
            if mustEncode {
                out.put(0x3D)
                out.put(hex[Int(byte >> 4)])
                out.put(hex[Int(byte & 0x0F)])
            } else {
                out.put(byte)
            }
            column += width
        }
    }
}


/// Header-field writing for outbound mail: RFC 2047 encoded words, display names, folding.
/// Fields are written straight into the message's bytes; the common case (ASCII values without
/// line breaks) never goes through Foundation.
enum ReferenceHeaderEncoding {
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

enum ReferenceRFC5322 {
    static func subjectTag(requestID: String) -> String {
        let digest = SHA256.hash(data: Array(requestID.utf8))
        return MailMessage.lowerHex(digest.prefix(2))
    }

    static func contains(_ text: String, _ part: String) -> Bool {
        let hay = Array(text.utf8), needle = Array(part.utf8)
        guard !needle.isEmpty, hay.count >= needle.count else { return needle.isEmpty }
        for start in 0...(hay.count - needle.count) where hay[start] == needle[0] {
            if hay[start..<start + needle.count].elementsEqual(needle) { return true }
        }
        return false
    }

    /// `MailComposer.compose` as it was, over already rendered parts.
    static func subject(rendered: String, requestID: String) -> String {
        let tagText = "[signoff \(subjectTag(requestID: requestID))]"
        return contains(rendered, tagText) ? rendered : tagText + " " + rendered
    }

    static func format(_ date: Date) -> String { ComposeFastPathTests.Reference.format(date) }

    static func rfc5322(_ m: MailMessage) -> [UInt8] {
        let (from, to, replyTo, subject, text, html) = (m.from, m.to, m.replyTo, m.subject, m.text, m.html)
        let (messageID, date, inReplyTo, references, extraHeaders) = (m.messageID, m.date, m.inReplyTo, m.references, m.extraHeaders)
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + text.utf8.count / 4 + (html.map { $0.utf8.count + $0.utf8.count / 4 } ?? 0) + 1024)
        func line(_ s: String) {
            out.append(contentsOf: s.utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        ReferenceHeaderEncoding.fold(name: "From", words: ReferenceHeaderEncoding.mailbox(from), into: &out)
        ReferenceHeaderEncoding.fold(name: "To", words: ReferenceHeaderEncoding.addressList(to), into: &out)
        if let replyTo {
            ReferenceHeaderEncoding.fold(name: "Reply-To", words: ReferenceHeaderEncoding.mailbox(replyTo), into: &out)
        }
        ReferenceHeaderEncoding.unstructured(name: "Subject", value: subject, into: &out)
        line("Date: " + format(date))
        line("Message-ID: " + messageID)
        if let inReplyTo { line("In-Reply-To: " + inReplyTo) }
        if !references.isEmpty {
            ReferenceHeaderEncoding.fold(name: "References", words: references, into: &out)
        }
        line("MIME-Version: 1.0")
        line("Auto-Submitted: auto-generated")
        line("X-Auto-Response-Suppress: OOF, AutoReply")
        for field in extraHeaders {
            ReferenceHeaderEncoding.unstructured(name: field.name, value: field.value, into: &out)
        }

        let textHeaders = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        guard let html else {
            line(textHeaders)
            line("")
            ReferenceQuotedPrintable.encode(text, into: &out)
            if out.suffix(2) != [0x0D, 0x0A] { line("") }
            return out
        }
        let boundary = "=_signoff_" + boundaryToken(messageID: messageID)
        line("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
        line("")
        line("This is a multi-part message in MIME format.")
        line("")
        line("--" + boundary)
        line(textHeaders)
        line("")
        ReferenceQuotedPrintable.encode(text, into: &out)
        line("")
        line("--" + boundary)
        line("Content-Type: text/html; charset=utf-8")
        line("Content-Transfer-Encoding: quoted-printable")
        line("")
        ReferenceQuotedPrintable.encode(html, into: &out)
        line("")
        line("--" + boundary + "--")
        return out
    }

    private static func boundaryToken(messageID: String) -> String {
        MailMessage.lowerHex(SHA256.hash(data: Array(messageID.utf8)).prefix(12))
    }
}
