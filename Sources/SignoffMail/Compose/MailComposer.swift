import Crypto
import Foundation

/// Renders a mail kind from the templates and composes the message: subject tag, Reply-To
/// with the reviewer's token as sub-address, thread headers.
///
/// ```swift
/// let composer = MailComposer(templates: .builtin, from: EmailAddress("signoff@example.org"),
///                             replyAddress: EmailAddress("approvals@example.org"))
/// let token = ReplyToken()
/// let mail = try composer.compose(.request, context: ctx, token: token)
/// store(mail.messageID, mail.rfc5322(), token.sha256Hex)
/// ```
public struct MailComposer: Sendable {
    /// The templates to render.
    public var templates: MailTemplates
    /// The `From` address.
    public var from: EmailAddress
    /// The address replies go to; each mail's `Reply-To` is this with the token as sub-address.
    public var replyAddress: EmailAddress

    public init(templates: MailTemplates, from: EmailAddress, replyAddress: EmailAddress) {
        self.templates = templates
        self.from = from
        self.replyAddress = replyAddress
    }

    /// Renders `kind` (or the job template `name`) for `context` and composes the message.
    ///
    /// - Parameters:
    ///   - to: the recipient; defaults to `context.reviewer` (pass the run's owner for `.failure`).
    ///   - token: the reviewer's reply token; when given, `Reply-To` is `local+TOKEN@domain`.
    ///   - inReplyTo: the request mail's Message-ID, for reminders and confirmations (same thread).
    ///   - messageID: reuse a Message-ID (otherwise a fresh one in the sender's domain).
    public func compose(_ kind: MailTemplateKind, named name: String? = nil, context: MailTemplateContext,
                        to: EmailAddress? = nil, token: ReplyToken? = nil, inReplyTo: String? = nil,
                        references: [String] = [], date: Date = Date(), messageID: String? = nil) throws -> MailMessage {
        let tag = MailComposer.subjectTag(requestID: context.request.id)
        // Text and HTML stay the renderer's UTF-8 bytes: the message encodes them as they are.
        let rendered = try templates.renderUTF8(kind, named: name, context: context, tag: tag)
        let tagText = "[signoff \(tag)]"
        let subject = MailComposer.contains(rendered.subject, tagText) ? rendered.subject : tagText + " " + rendered.subject
        var refs = references
        if let inReplyTo, !refs.contains(inReplyTo) { refs.append(inReplyTo) }
        return MailMessage(from: from, to: [to ?? context.reviewer],
                           replyTo: token.map { MailComposer.subaddressed(replyAddress, $0.value) },
                           subject: subject, textBody: .utf8(rendered.text), htmlBody: .utf8(rendered.html),
                           messageID: messageID, date: date, inReplyTo: inReplyTo, references: refs,
                           extraHeaders: [MailHeaderField("X-Signoff-Request", context.request.id)])
    }

    /// `replyAddress.withSubaddress(tag)` without re-trimming the address: the common case
    /// (ASCII `local@domain`, no sub-address yet) is put together directly.
    static func subaddressed(_ address: EmailAddress, _ tag: String) -> EmailAddress {
        let utf8 = address.address.utf8
        guard let first = utf8.first, let last = utf8.last, first > 0x20, first < 0x7F, last > 0x20, last < 0x7F,
              utf8.allSatisfy({ $0 < 0x80 && $0 != 0x2B }),
              let at = address.address.utf8.lastIndex(of: 0x40) else {
            return address.withSubaddress(tag)
        }
        let local = address.address[..<at]
        let domain = address.address[address.address.utf8.index(after: at)...]
        var result = address
        result.address = local + "+" + tag + "@" + domain.lowercased()
        return result
    }

    /// Whether `text` contains `part`, byte for byte (the tag is ASCII).
    static func contains(_ text: String, _ part: String) -> Bool {
        var text = text, part = part
        return text.withUTF8 { hay in
            part.withUTF8 { needle in
                guard !needle.isEmpty, hay.count >= needle.count else { return needle.isEmpty }
                let first = needle[0]
                for start in 0...(hay.count - needle.count) where hay[start] == first {
                    if memcmp(hay.baseAddress! + start, needle.baseAddress!, needle.count) == 0 { return true }
                }
                return false
            }
        }
    }

    /// The subject tag's code for a request: the first 4 hex digits of SHA-256(request id),
    /// stable across the request's mails so they read as one conversation.
    public static func subjectTag(requestID: String) -> String {
        var id = requestID
        return id.withUTF8 { bytes in
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            return hasher.finalize().withUnsafeBytes { MailMessage.lowerHex($0.prefix(2)) }
        }
    }
}
