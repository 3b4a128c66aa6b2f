import Foundation
import SignoffTestSupport
import Testing
@testable import SignoffMail

/// The byte-level fast paths of composing against the String / Foundation forms they replace:
/// dates, link filtering, the text part's final newline, the flat template tree.
struct ComposeFastPathTests {
    /// The String forms the byte writers replaced, kept as the reference.
    enum Reference {
        static func format(_ date: Date) -> String {
            let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
            var t = tm()
            gmtime_r(&seconds, &t)
            func pad(_ n: Int32, _ w: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, w - s.count)) + s }
            return "\(days[Int(t.tm_wday)]), \(t.tm_mday) \(months[Int(t.tm_mon)]) \(t.tm_year + 1900) "
                + "\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)) +0000"
        }

        static func humanDate(_ date: Date) -> String { String(format(date).dropLast(9)) + " UTC" }

        static func isoDate(_ date: Date) -> String {
            var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
            var t = tm()
            gmtime_r(&seconds, &t)
            func pad(_ n: Int32, _ w: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, w - s.count)) + s }
            return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2))Z"
        }
    }

    @Test func dateFormsMatchTheStringFormsForOldFutureAndFractionalDates() {
        var dates = [0, 1, -1, 59.999, 1_795_242_396, 1_795_500_000.5, 951_782_400, 4_102_444_799, -62_135_596_800,
                     -62_198_755_200, 253_402_300_799, -30_000_000_000].map { Date(timeIntervalSince1970: $0) }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 { dates.append(Date(timeIntervalSince1970: Double(Int64.random(in: -70_000_000_000...300_000_000_000, using: &rng)) / 10)) }
        for date in dates {
            #expect(MailDate.format(date) == Reference.format(date), "\(date.timeIntervalSince1970)")
            #expect(MailTemplateContext.humanDate(date) == Reference.humanDate(date), "\(date.timeIntervalSince1970)")
            #expect(MailTemplateContext.isoDate(date) == Reference.isoDate(date), "\(date.timeIntervalSince1970)")
        }
    }

    @Test func webLinkFilterMatchesLowercasedPrefixForEveryShape() {
        let urls = ["https://x.org", "http://x.org", "HTTPS://X.ORG", "HtTp://a", "https://", "http://", "https:/", "http:",
                    "", "h", "javascript:alert(1)", "data:text/html,x", "ftp://x", " https://x", "https:// x",
                    "https://é.org", "http://é", "httpś://x", "ｈttps://x", "https:/\u{301}/x", "http:/\u{301}/x",
                    "https://\u{301}x", "http://\u{301}", "HTTPS://ÉCOLE", "İhttps://", "\u{212A}https://", "https:\r\n//"]
        for url in urls {
            let reference = url.lowercased().hasPrefix("https://") || url.lowercased().hasPrefix("http://")
            #expect(MailTemplateContext.isWebURL(url) == reference, "\(url.debugDescription)")
        }
    }

    @Test func textPartEndsWithANewlineCharacterExactlyAsHasSuffix() {
        for text in ["", "a", "\n", "a\n", "a\r\n", "\r\n", "\r", "a\n\r", "a\n\u{301}", "\n\n", "é\n", "x\r\n\r\n"] {
            var bytes = Array(text.utf8)
            MailTemplates.endWithNewline(&bytes)
            let reference = text.hasSuffix("\n") ? text : text + "\n"
            #expect(bytes == Array(reference.utf8), "\(text.debugDescription)")
        }
    }

    /// Every built-in kind over contexts with link shapes, bodies ending in CR LF, empty and
    /// repeated values, rendered by the flat tree and by swift-mustache.
    @Test(arguments: MailTemplateKind.allCases)
    func flatTreeRendersLikeSwiftMustacheOnUnusualValues(kind: MailTemplateKind) throws {
        var contexts: [MailTemplateContext] = []
        let links: [[MailTemplateContext.Link]] = [
            [.init(label: "A & <b>", url: "HTTPS://Example.org/?a=1&b='2'"), .init(label: "ftp", url: "ftp://x"),
             .init(label: "plain", url: "http://x")],
            [.init(label: "", url: "https://é.example/ü"), .init(label: "js", url: "JavaScript:alert(1)")],
            [],
        ]
        for (i, linkSet) in links.enumerated() {
            var c = OutboundFixtures.context(
                title: ["", "=?utf-8?q?x?= \"quoted\"", String(repeating: "long title ", count: 20)][i],
                body: ["ends with CRLF\r\n", "", "\r\n\r\n  indented\ttab \n"][i],
                kind: [.choice, .text, .approval][i], choices: i == 0 ? ["a", "a", "<b>"] : [],
                fields: i == 1 ? [.init(name: "", value: ""), .init(name: "x", value: "")] : [])
            c.links = linkSet
            c.stepID = i == 2 ? "" : "step-\(i)"
            c.job.description = i == 0 ? "" : "d"
            c.reviewer.displayName = i == 1 ? "" : "Rëviewer"
            c.decision = .init(outcome: i == 2 ? "" : "approve", value: i == 0 ? "" : "v", reason: "r\r\n",
                               by: nil, at: Date(timeIntervalSince1970: Double(i) * 1e9))
            c.clarificationProblem = i == 0 ? "" : "p"
            c.reminderNumber = i == 1 ? 0 : -i
            c.run.attempt = -3 + i
            contexts.append(c)
        }
        for (i, context) in contexts.enumerated() {
            for tag in ["", "ab12"] {
                let fast = try MailTemplates.builtin.render(kind, named: nil, context: context, tag: tag, compiled: true)
                let reference = try MailTemplates.builtin.render(kind, named: nil, context: context, tag: tag, compiled: false)
                #expect(fast == reference, "context \(i), tag \(tag.debugDescription)")
            }
        }
    }
}

/// Composed messages byte for byte against the encoders as they were before the fast paths
/// (``ReferenceRFC5322``), on random messages built from awkward pieces.
struct ComposeDifferentialTests {
    /// Seeded, so a failure can be reproduced from its seed.
    typealias SplitMix = SplitMix64

    static let textPieces = ["a", "word", "b ", " ", "  ", "\t", "=", "==", ".", "..", "From ", "From", "F", "é", "東京", "👩‍👩‍👧",
                             "\n", "\r\n", "\r", "\n\n", "x=y", "<p style=\"a:b\">", "&amp;", " \n", "\t\r\n", "=\n", "~", "\u{7F}",
                             "\u{0}", "\u{1B}", String(repeating: "x", count: 74), String(repeating: "y", count: 75),
                             String(repeating: "z", count: 76), String(repeating: "é", count: 30), String(repeating: "ab ", count: 40)]
    static let namePieces = ["Eda", " ", "Editor", "é", "Zoë", "東京", ",", ".", "\"", "\\", "(x)", "<", ">", "@", ":", ";", "[", "]",
                             "=?", "?=", "\r\n", "\n", "\t", "  ", String(repeating: "n", count: 80), "O'Brien", "Jr."]
    static let subjectPieces = ["Approve", " ", "  ", "the", "report", "é", "東京", "=?", "?=", "=?utf-8?q?x?=", "\r\n", "\n", "\r",
                                "\t", String(repeating: "w", count: 69), String(repeating: "v", count: 70),
                                String(repeating: "u", count: 71), "[signoff ab12]", "👩‍👩‍👧", ":", "\u{7F}"]

    static func pick(_ pieces: [String], _ maxCount: Int, _ rng: inout SplitMix) -> String {
        let count = Int(rng.next() % UInt64(maxCount + 1))
        return (0..<count).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
    }

    static func address(_ rng: inout SplitMix) -> EmailAddress {
        let specs = ["a@example.org", "Editor@Example.ORG", "approvals+old@x.org", "ünï@exämple.org", "no-at", "a@b@c.org",
                     "x\r\n@y.org", "q\"@z.org"]
        let name: String? = rng.next() % 4 == 0 ? nil : pick(namePieces, 6, &rng)
        return EmailAddress(specs[Int(rng.next() % UInt64(specs.count))], displayName: name)
    }

    static func message(_ rng: inout SplitMix) -> MailMessage {
        let to = (0..<(1 + Int(rng.next() % 3))).map { _ in address(&rng) }
        let references = (0..<Int(rng.next() % 4)).map { "<ref-\($0)-\(String(repeating: "r", count: Int(rng.next() % 60)))@example.org>" }
        var extra = [MailHeaderField("X-Signoff-Request", "q-\(rng.next() % 1000)")]
        if rng.next() % 3 == 0 { extra.append(MailHeaderField("X-Note", pick(subjectPieces, 5, &rng))) }
        return MailMessage(from: address(&rng), to: to, replyTo: rng.next() % 2 == 0 ? address(&rng) : nil,
                           subject: pick(subjectPieces, 8, &rng), text: pick(textPieces, 40, &rng),
                           html: rng.next() % 3 == 0 ? nil : pick(textPieces, 60, &rng),
                           messageID: "<\(rng.next())@example.org>",
                           date: Date(timeIntervalSince1970: Double(rng.next() % 4_000_000_000)),
                           inReplyTo: rng.next() % 2 == 0 ? "<req-\(rng.next() % 100)@example.org>" : nil,
                           references: references, extraHeaders: extra)
    }

    @Test func composedBytesMatchTheReferenceEncodersOnRandomMessages() {
        var rng = SplitMix(seed: 20261121)
        for i in 0..<3000 {
            let mail = Self.message(&rng)
            let fast = mail.rfc5322(), reference = ReferenceRFC5322.rfc5322(mail)
            #expect(fast == reference, "message \(i): \(String(decoding: reference, as: UTF8.self).debugDescription)")
            if fast != reference { break }
        }
    }

    @Test func quotedPrintableMatchesTheReferenceOnRandomAndLongLines() {
        var rng = SplitMix(seed: 7)
        var texts = ["", " ", "=", ".", "From ", "From", String(repeating: "x", count: 300), String(repeating: "x ", count: 100),
                     String(repeating: "=", count: 100), String(repeating: "é", count: 100), "a\t", "a \r\n", "\r\r\n\n"]
        for _ in 0..<3000 { texts.append(Self.pick(Self.textPieces, 60, &rng)) }
        for text in texts {
            let fast = QuotedPrintable.encode(text), reference = ReferenceQuotedPrintable.encode(text)
            #expect(fast == reference, "\(text.debugDescription)")
            if fast != reference { break }
        }
    }

    @Test func composedSubjectAndTagMatchTheReference() throws {
        var rng = SplitMix(seed: 11)
        for i in 0..<300 {
            var context = OutboundFixtures.context(title: Self.pick(Self.subjectPieces, 6, &rng))
            context.request.id = i % 7 == 0 ? "" : "q-\(rng.next())-é"
            let tag = ReferenceRFC5322.subjectTag(requestID: context.request.id)
            #expect(MailComposer.subjectTag(requestID: context.request.id) == tag)
            let rendered = try MailTemplates.builtin.render(.confirmation, context: context, tag: tag)
            let mail = try OutboundFixtures.composer.compose(.confirmation, context: context)
            #expect(mail.subject == ReferenceRFC5322.subject(rendered: rendered.subject, requestID: context.request.id))
            #expect(mail.text == rendered.text && mail.html == rendered.html)
        }
    }

    /// The composer hands the rendered bytes to the message without decoding them: the result
    /// must be the same message, byte for byte and as a value, as one built from Strings.
    @Test(arguments: MailTemplateKind.allCases)
    func composedMessagesFromRenderedBytesEqualMessagesFromStrings(kind: MailTemplateKind) throws {
        for (i, context) in TemplateTests.variedContexts().enumerated() {
            let mail = try OutboundFixtures.composer.compose(kind, context: context, token: ReplyToken(),
                                                             inReplyTo: i % 2 == 0 ? "<req@example.org>" : nil)
            let rendered = try MailTemplates.builtin.render(kind, context: context, tag: MailComposer.subjectTag(requestID: context.request.id))
            #expect(mail.text == rendered.text && mail.html == rendered.html, "context \(i)")
            let fromStrings = MailMessage(from: mail.from, to: mail.to, replyTo: mail.replyTo, subject: mail.subject,
                                          text: rendered.text, html: rendered.html, messageID: mail.messageID, date: mail.date,
                                          inReplyTo: mail.inReplyTo, references: mail.references, extraHeaders: mail.extraHeaders)
            #expect(mail == fromStrings && mail.hashValue == fromStrings.hashValue, "context \(i)")
            #expect(mail.rfc5322() == ReferenceRFC5322.rfc5322(fromStrings), "context \(i)")
            var edited = mail
            edited.text = "replaced =\n"
            edited.html = nil
            #expect(edited != mail && edited.text == "replaced =\n" && edited.html == nil)
            #expect(edited.rfc5322() == ReferenceRFC5322.rfc5322(edited))
        }
    }
}
