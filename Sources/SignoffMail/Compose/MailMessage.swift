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
        let hex = (0..<2).map { _ in
            let s = String(rng.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
        let host = domain.isEmpty ? "signoff.invalid" : domain
        return "<\(hex)@\(host)>"
    }

    /// The message as RFC 5322 bytes with CRLF line ends, ready for SMTP or an `.eml` file.
    public func rfc5322() -> [UInt8] {
        var head: [String] = []
        head.append(HeaderEncoding.fold(name: "From", words: HeaderEncoding.mailbox(from), separator: " "))
        head.append(HeaderEncoding.fold(name: "To", words: HeaderEncoding.addressList(to), separator: " "))
        if let replyTo {
            head.append(HeaderEncoding.fold(name: "Reply-To", words: HeaderEncoding.mailbox(replyTo), separator: " "))
        }
        head.append(HeaderEncoding.unstructured(name: "Subject", value: subject))
        head.append("Date: " + MailDate.format(date))
        head.append("Message-ID: " + messageID)
        if let inReplyTo { head.append("In-Reply-To: " + inReplyTo) }
        if !references.isEmpty {
            head.append(HeaderEncoding.fold(name: "References", words: references, separator: " "))
        }
        head.append("MIME-Version: 1.0")
        head.append("Auto-Submitted: auto-generated")
        head.append("X-Auto-Response-Suppress: OOF, AutoReply")
        for field in extraHeaders {
            head.append(HeaderEncoding.unstructured(name: field.name, value: field.value))
        }

        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count * 2 + (html?.utf8.count ?? 0) + 1024)
        func line(_ s: String) { out.append(contentsOf: Array(s.utf8)); out.append(contentsOf: [0x0D, 0x0A]) }
        for field in head { line(field) }

        let textHeaders = ["Content-Type: text/plain; charset=utf-8",
                           "Content-Transfer-Encoding: quoted-printable"]
        guard let html else {
            for field in textHeaders { line(field) }
            line("")
            out.append(contentsOf: QuotedPrintable.encode(text))
            if out.suffix(2) != [0x0D, 0x0A] { line("") }
            return out
        }
        let boundary = "=_signoff_" + MailMessage.boundaryToken(messageID: messageID)
        line("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
        line("")
        line("This is a multi-part message in MIME format.")
        line("")
        line("--" + boundary)
        for field in textHeaders { line(field) }
        line("")
        out.append(contentsOf: QuotedPrintable.encode(text))
        line("")
        line("--" + boundary)
        line("Content-Type: text/html; charset=utf-8")
        line("Content-Transfer-Encoding: quoted-printable")
        line("")
        out.append(contentsOf: QuotedPrintable.encode(html))
        line("")
        line("--" + boundary + "--")
        return out
    }

    /// A boundary that cannot occur in quoted-printable output ("=_" is never produced by QP,
    /// where '=' is always followed by hex digits or a line end). Derived from the Message-ID so
    /// the same message always has the same bytes.
    private static func boundaryToken(messageID: String) -> String {
        SHA256.hash(data: Array(messageID.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
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
