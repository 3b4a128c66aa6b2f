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
    public var text: String
    /// The HTML part, if any.
    public var html: String?
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
        self.text = text
        self.html = html
        self.messageID = messageID ?? MailMessage.makeMessageID(domain: from.domain)
        self.date = date
        self.inReplyTo = inReplyTo
        self.references = references
        self.extraHeaders = extraHeaders
    }

    /// A fresh `<128-random-bits-hex@domain>` Message-ID.
    public static func makeMessageID(domain: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            let word: UInt64 = rng.next()
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        let hex = lowerHex(bytes)
        let host = domain.isEmpty ? "signoff.invalid" : domain
        return "<\(hex)@\(host)>"
    }

    /// The message as RFC 5322 bytes with CRLF line ends, ready for SMTP or an `.eml` file.
    public func rfc5322() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + text.utf8.count / 4 + (html.map { $0.utf8.count + $0.utf8.count / 4 } ?? 0) + 1024)
        func line(_ s: String) {
            out.append(contentsOf: s.utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        HeaderEncoding.fold(name: "From", words: HeaderEncoding.mailbox(from), into: &out)
        HeaderEncoding.fold(name: "To", words: HeaderEncoding.addressList(to), into: &out)
        if let replyTo {
            HeaderEncoding.fold(name: "Reply-To", words: HeaderEncoding.mailbox(replyTo), into: &out)
        }
        HeaderEncoding.unstructured(name: "Subject", value: subject, into: &out)
        line("Date: " + MailDate.format(date))
        line("Message-ID: " + messageID)
        if let inReplyTo { line("In-Reply-To: " + inReplyTo) }
        if !references.isEmpty {
            HeaderEncoding.fold(name: "References", words: references, into: &out)
        }
        line("MIME-Version: 1.0")
        line("Auto-Submitted: auto-generated")
        line("X-Auto-Response-Suppress: OOF, AutoReply")
        for field in extraHeaders {
            HeaderEncoding.unstructured(name: field.name, value: field.value, into: &out)
        }

        let textHeaders = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        guard let html else {
            line(textHeaders)
            line("")
            QuotedPrintable.encode(text, into: &out)
            if out.suffix(2) != [0x0D, 0x0A] { line("") }
            return out
        }
        let boundary = "=_signoff_" + MailMessage.boundaryToken(messageID: messageID)
        line("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
        line("")
        line("This is a multi-part message in MIME format.")
        line("")
        line("--" + boundary)
        line(textHeaders)
        line("")
        QuotedPrintable.encode(text, into: &out)
        line("")
        line("--" + boundary)
        line("Content-Type: text/html; charset=utf-8")
        line("Content-Transfer-Encoding: quoted-printable")
        line("")
        QuotedPrintable.encode(html, into: &out)
        line("")
        line("--" + boundary + "--")
        return out
    }

    /// A boundary that cannot occur in quoted-printable output ("=_" is never produced by QP,
    /// where '=' is always followed by hex digits or a line end). Derived from the Message-ID so
    /// the same message always has the same bytes.
    private static func boundaryToken(messageID: String) -> String {
        lowerHex(SHA256.hash(data: Array(messageID.utf8)).prefix(12))
    }

    /// Lower-case hex of `bytes` (two digits each).
    static func lowerHex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
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
