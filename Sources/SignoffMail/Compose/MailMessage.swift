import Crypto
import Foundation

/// One outbound email, composed by hand into RFC 5322 bytes.
///
/// `rfc5322()` writes CRLF line ends, folded headers under 998 octets, RFC 2047 encoded words
/// for non-ASCII subjects and display names, and a `multipart/alternative` body (text, then
/// HTML) in quoted-printable UTF-8 — or a single text part when there is no HTML.
/// Automatic-mail headers (`Auto-Submitted: auto-generated`, `X-Auto-Response-Suppress: OOF,
/// AutoReply`) are always written, so vacation responders stay quiet.
public struct MailMessage: Sendable, Hashable {
    /// The configured sender.
    public var from: EmailAddress
    /// Recipients (`To`).
    public var to: [EmailAddress]
    /// Where replies go: the reply address with the request token as sub-address.
    public var replyTo: EmailAddress?
    /// The subject, tag included (see ``MailComposer``).
    public var subject: String
    /// The plain-text part (never HTML-escaped).
    public var text: String {
        get { textBody.string }
        set { textBody = .string(newValue) }
    }
    /// The HTML part, if any.
    public var html: String? {
        get { htmlBody?.string }
        set { htmlBody = newValue.map(Body.string) }
    }
    /// The parts as stored: Strings, or the renderer's UTF-8 bytes (encoded as they are, decoded
    /// only when `text` or `html` is read).
    var textBody: Body
    var htmlBody: Body?
    /// The Message-ID with angle brackets, `<…@domain>`; see ``MailMessage/makeMessageID(domain:)``.
    public var messageID: String
    /// The `Date` header.
    public var date: Date
    /// The Message-ID this message answers (reminders, confirmations), with angle brackets.
    public var inReplyTo: String?
    /// The thread, oldest first, with angle brackets.
    public var references: [String]
    /// More header fields (`X-Signoff-Request`, …), written after the standard ones. Values
    /// must be ASCII; non-ASCII values are written as encoded words.
    public var extraHeaders: [MailHeaderField]

    /// A message; `messageID` defaults to a fresh one in the sender's domain.
    public init(from: EmailAddress, to: [EmailAddress], replyTo: EmailAddress? = nil, subject: String,
                text: String, html: String? = nil, messageID: String? = nil, date: Date = Date(),
                inReplyTo: String? = nil, references: [String] = [], extraHeaders: [MailHeaderField] = []) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.textBody = .string(text)
        self.htmlBody = html.map(Body.string)
        self.messageID = messageID ?? MailMessage.makeMessageID(domain: from.domain)
        self.date = date
        self.inReplyTo = inReplyTo
        self.references = references
        self.extraHeaders = extraHeaders
    }

    /// A message with rendered bodies (see ``MailTemplates/renderUTF8(_:named:context:tag:compiled:)``).
    init(from: EmailAddress, to: [EmailAddress], replyTo: EmailAddress?, subject: String, textBody: Body, htmlBody: Body?,
         messageID: String?, date: Date, inReplyTo: String?, references: [String], extraHeaders: [MailHeaderField]) {
        self.init(from: from, to: to, replyTo: replyTo, subject: subject, text: "", html: nil, messageID: messageID, date: date,
                  inReplyTo: inReplyTo, references: references, extraHeaders: extraHeaders)
        self.textBody = textBody
        self.htmlBody = htmlBody
    }

    /// A body part's content.
    enum Body: Sendable {
        case string(String)
        /// Valid UTF-8 (the renderer's output).
        case utf8([UInt8])

        var string: String {
            switch self {
            case .string(let s): return s
            case .utf8(let bytes): return String(decoding: bytes, as: UTF8.self)
            }
        }

        func encodeQuotedPrintable(into out: inout [UInt8]) {
            switch self {
            case .string(let s): QuotedPrintable.encode(s, into: &out)
            case .utf8(let bytes): bytes.withUnsafeBufferPointer { QuotedPrintable.encode($0, into: &out) }
            }
        }

        var utf8Count: Int {
            switch self {
            case .string(let s): return s.utf8.count
            case .utf8(let bytes): return bytes.count
            }
        }
    }

    /// Equal when every field is equal, the bodies compared as Strings (however they are stored).
    public static func == (a: MailMessage, b: MailMessage) -> Bool {
        a.from == b.from && a.to == b.to && a.replyTo == b.replyTo && a.subject == b.subject && a.text == b.text
            && a.html == b.html && a.messageID == b.messageID && a.date == b.date && a.inReplyTo == b.inReplyTo
            && a.references == b.references && a.extraHeaders == b.extraHeaders
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(from)
        hasher.combine(to)
        hasher.combine(replyTo)
        hasher.combine(subject)
        hasher.combine(text)
        hasher.combine(html)
        hasher.combine(messageID)
        hasher.combine(date)
        hasher.combine(inReplyTo)
        hasher.combine(references)
        hasher.combine(extraHeaders)
    }

    /// A fresh `<128-random-bits-hex@domain>` Message-ID: one 16-byte fill from the system
    /// random source (one `getrandom` call on Linux).
    public static func makeMessageID(domain: String) -> String {
        var random: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &random) { arc4random_buf($0.baseAddress!, 16) }
        var out = [UInt8]()
        out.reserveCapacity(36 + domain.utf8.count)
        out.append(0x3C)
        withUnsafeBytes(of: &random) { appendLowerHex(UnsafeBufferPointer(start: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 16), into: &out) }
        out.append(0x40)
        out.append(contentsOf: domain.isEmpty ? "signoff.invalid".utf8 : domain.utf8)
        out.append(0x3E)
        return String(decoding: out, as: UTF8.self)
    }

    /// The message as RFC 5322 bytes with CRLF line ends, ready for SMTP or an `.eml` file.
    public func rfc5322() -> [UInt8] {
        var out = [UInt8]()
        // Room for the headers and for each body's worst-case quoted-printable (which the encoder
        // claims before trimming), so the buffer is allocated once.
        out.reserveCapacity(1024 + 2 * subject.utf8.count + 4 * textBody.utf8Count + 4 * (htmlBody?.utf8Count ?? 0) + 64)
        func raw(_ s: StaticString) {
            out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        func line(_ s: StaticString) {
            raw(s)
            out.append(0x0D)
            out.append(0x0A)
        }
        func field(_ name: StaticString, _ value: String) {
            raw(name)
            out.append(contentsOf: value.utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        HeaderEncoding.addressField(name: "From", from, into: &out)
        HeaderEncoding.addressField(name: "To", to, into: &out)
        if let replyTo {
            HeaderEncoding.addressField(name: "Reply-To", replyTo, into: &out)
        }
        HeaderEncoding.unstructured(name: "Subject", value: subject, into: &out)
        raw("Date: ")
        MailDate.append(date, into: &out)
        line("")
        field("Message-ID: ", messageID)
        if let inReplyTo { field("In-Reply-To: ", inReplyTo) }
        if !references.isEmpty {
            HeaderEncoding.fold(name: "References", words: references, into: &out)
        }
        line("MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: OOF, AutoReply")
        for field in extraHeaders {
            HeaderEncoding.unstructured(name: field.name, value: field.value, into: &out)
        }

        guard let htmlBody else {
            line("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")
            textBody.encodeQuotedPrintable(into: &out)
            if out.count < 2 || out[out.count - 2] != 0x0D || out[out.count - 1] != 0x0A { line("") }
            return out
        }
        // "=_signoff_" and 24 hex digits: a boundary that cannot occur in quoted-printable output
        // ("=_" is never produced by QP, where '=' is always followed by hex digits or a line
        // end). Derived from the Message-ID so the same message always has the same bytes.
        var boundary = [UInt8]()
        boundary.reserveCapacity(34)
        boundary.append(contentsOf: "=_signoff_".utf8)
        var id = messageID
        id.withUTF8 { bytes in
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            hasher.finalize().withUnsafeBytes { digest in
                MailMessage.appendLowerHex(UnsafeBufferPointer(start: digest.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 12),
                                           into: &boundary)
            }
        }
        func boundaryLine(last: Bool) {
            out.append(0x2D)
            out.append(0x2D)
            out.append(contentsOf: boundary)
            if last {
                out.append(0x2D)
                out.append(0x2D)
            }
            out.append(0x0D)
            out.append(0x0A)
        }
        raw("Content-Type: multipart/alternative;\r\n boundary=\"")
        out.append(contentsOf: boundary)
        line("\"\r\n\r\nThis is a multi-part message in MIME format.\r\n")
        boundaryLine(last: false)
        line("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")
        textBody.encodeQuotedPrintable(into: &out)
        line("")
        boundaryLine(last: false)
        line("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")
        htmlBody.encodeQuotedPrintable(into: &out)
        line("")
        boundaryLine(last: true)
        return out
    }

    /// Appends the lower-case hex of `bytes` (two digits each).
    static func appendLowerHex(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        for byte in bytes {
            out.append(d[Int(byte >> 4)])
            out.append(d[Int(byte & 0x0F)])
        }
    }

    /// Lower-case hex of `bytes` (two digits each).
    public static func lowerHex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits: StaticString = "0123456789abcdef"
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        digits.withUTF8Buffer { d in
            for byte in bytes {
                out.append(d[Int(byte >> 4)])
                out.append(d[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One extra header field of an outbound message.
public struct MailHeaderField: Sendable, Hashable {
    /// The field name, e.g. `X-Signoff-Request`.
    public var name: String
    /// The unstructured value.
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
