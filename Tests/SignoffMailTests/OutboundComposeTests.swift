import Foundation
import Testing
@testable import SignoffMail

/// What Python's `email` package (policy=default) sees in a composed message.
struct ParsedByPython: Decodable {
    var defects: [String]
    var contentType: String
    var subject: String
    var fromDisplay: String
    var fromAddress: String
    var to: [String]
    var replyTo: String?
    var messageID: String
    var inReplyTo: String?
    var references: String?
    var dateParsed: Bool
    var autoSubmitted: String?
    var autoResponseSuppress: String?
    var text: String?
    var html: String?

    static let script = #"""
import sys, json, email
from email import policy
raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(raw, policy=policy.default)
defects = []
for part in msg.walk():
    defects += [type(d).__name__ for d in part.defects]
    for k, v in part.items():
        defects += [k + ': ' + type(d).__name__ for d in getattr(v, 'defects', ())]
def body(kind):
    b = msg.get_body((kind,))
    return b.get_content().replace('\r\n', '\n') if b is not None else None
def opt(name):
    v = msg[name]
    return str(v) if v is not None else None
frm = msg['From'].addresses[0]
print(json.dumps({
    'defects': defects,
    'contentType': msg.get_content_type(),
    'subject': str(msg['Subject']),
    'fromDisplay': frm.display_name,
    'fromAddress': frm.addr_spec,
    'to': [a.addr_spec for a in msg['To'].addresses],
    'replyTo': msg['Reply-To'].addresses[0].addr_spec if msg['Reply-To'] else None,
    'messageID': str(msg['Message-ID']),
    'inReplyTo': opt('In-Reply-To'),
    'references': opt('References'),
    'dateParsed': msg['Date'].datetime is not None,
    'autoSubmitted': opt('Auto-Submitted'),
    'autoResponseSuppress': opt('X-Auto-Response-Suppress'),
    'text': body('plain'),
    'html': body('html'),
}))
"""#

    static func parse(_ raw: [UInt8]) throws -> ParsedByPython {
        let json = try MailTestEnvironment.runPython(script: script, input: raw)
        return try JSONDecoder().decode(ParsedByPython.self, from: Data(json.utf8))
    }
}

enum OutboundFixtures {
    static let owner = EmailAddress("owner@example.org", displayName: "Run Owner")

    static func context(title: String = "Publish the weekly report?", body: String? = "Revenue is up 4%.\nCosts are flat.",
                        reviewer: EmailAddress = EmailAddress("editor@example.org", displayName: "Eda Editor"),
                        kind: MailResponseKind = .approval, choices: [String] = [],
                        fields: [MailTemplateContext.Field] = [MailTemplateContext.Field(name: "week", value: "47")]) -> MailTemplateContext {
        MailTemplateContext(
            job: .init(name: "weekly-report", description: "Build the report, let the editor approve it, then publish."),
            run: .init(id: "r-0001", attempt: 1, owner: owner.address), stepID: "review",
            request: .init(id: "q-0001", title: title, body: body, responseKind: kind, choices: choices, fields: fields),
            reviewer: reviewer, deadline: Date(timeIntervalSince1970: 1_795_500_000),
            links: [.init(label: "Report draft", url: "https://reports.example.org/w47?a=1&b=2")])
    }

    static let composer = MailComposer(templates: .builtin,
                                       from: EmailAddress("signoff@example.org", displayName: "Signoff"),
                                       replyAddress: EmailAddress("approvals@example.org"))
}

struct OutboundComposeTests {
    @Test func requestMailParsesCleanlyInPythonWithBothPartsAndHeaders() throws {
        let token = ReplyToken()
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: token)
        let parsed = try ParsedByPython.parse(mail.rfc5322())
        #expect(parsed.defects.isEmpty, "defects: \(parsed.defects)")
        #expect(parsed.contentType == "multipart/alternative")
        let tag = MailComposer.subjectTag(requestID: "q-0001")
        #expect(parsed.subject == "[signoff \(tag)] Approval needed: Publish the weekly report?")
        #expect(parsed.fromDisplay == "Signoff")
        #expect(parsed.fromAddress == "signoff@example.org")
        #expect(parsed.to == ["editor@example.org"])
        #expect(parsed.replyTo == "approvals+\(token.value)@example.org")
        #expect(parsed.messageID == mail.messageID)
        #expect(mail.messageID.hasSuffix("@example.org>") && mail.messageID.hasPrefix("<"))
        #expect(parsed.dateParsed)
        #expect(parsed.autoSubmitted == "auto-generated")
        #expect(parsed.autoResponseSuppress == "OOF, AutoReply")
        #expect(parsed.inReplyTo == nil)
        let text = try #require(parsed.text)
        #expect(text == mail.text, "the text part must round-trip exactly")
        // Grammar first, marker below the typing area, request after the marker.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "Reply with one of these on the first line:")
        let approve = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix("APPROVE") })
        let reject = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix("REJECT: reason") })
        let marker = try #require(lines.firstIndex(of: "-- reply above this line --"))
        let title = try #require(lines.firstIndex(of: "Publish the weekly report?"))
        #expect(approve < reject && reject < marker && marker < title)
        #expect(lines[(reject + 1)..<marker].allSatisfy { $0.isEmpty }, "a blank typing area above the marker")
        #expect(text.contains("Revenue is up 4%.\nCosts are flat."))
        #expect(text.contains("week: 47"))
        #expect(text.contains("https://reports.example.org/w47?a=1&b=2"), "text is never HTML-escaped")
        let html = try #require(parsed.html)
        #expect(html == mail.html)
        #expect(html.contains("<code style=\"font-size:14px;background:#f3f4f6;padding:2px 6px;border-radius:4px\">APPROVE</code>"))
        #expect(html.contains("href=\"https://reports.example.org/w47?a=1&amp;b=2\""))
        #expect(html.contains("-- reply above this line --"))
    }

    @Test func nonASCIISubjectAndDisplayNamesAreEncodedAndDecodeBack() throws {
        let title = "Freigabe für Straßenbau — 東京オフィス の 予算承認をお願いします、とても長い件名でも折り返されること 🚧"
        let reviewer = EmailAddress("jose@example.org", displayName: "José Müller-Lüdenscheidt, Finanzabteilung")
        let composer = MailComposer(templates: .builtin, from: EmailAddress("signoff@example.org", displayName: "Signöff Bot"),
                                    replyAddress: EmailAddress("approvals@example.org"))
        let mail = try composer.compose(.request, context: OutboundFixtures.context(title: title, reviewer: reviewer), token: ReplyToken())
        let raw = mail.rfc5322()
        let parsed = try ParsedByPython.parse(raw)
        #expect(parsed.defects.isEmpty, "defects: \(parsed.defects)")
        #expect(parsed.subject.hasSuffix("Approval needed: " + title))
        #expect(parsed.fromDisplay == "Signöff Bot")
        let head = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        #expect(head.unicodeScalars.allSatisfy { $0.isASCII }, "headers are ASCII (RFC 2047)")
        for line in head.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 78, "header line not folded: \(line)")
        }
        #expect(try #require(parsed.text).contains(title))
    }

    @Test func everyLineEndsWithCRLFAndStaysUnder998Octets() throws {
        let long = String(repeating: "wörd ", count: 400) + String(repeating: "x", count: 1500)
        let body = "trailing space \nFrom the start\n.dot line\n= sign\ttab\t\n" + long
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(body: body), token: ReplyToken())
        let raw = mail.rfc5322()
        var lineLength = 0
        var previous: UInt8 = 0
        for byte in raw {
            if byte == 0x0A {
                #expect(previous == 0x0D, "bare LF in output")
            } else if previous == 0x0D {
                Issue.record("bare CR in output")
            }
            lineLength = byte == 0x0A ? 0 : lineLength + 1
            #expect(lineLength < 998)
            previous = byte
        }
        #expect(raw.suffix(2) == [0x0D, 0x0A])
        let parsed = try ParsedByPython.parse(raw)
        #expect(parsed.defects.isEmpty, "defects: \(parsed.defects)")
        #expect(try #require(parsed.text).contains(body), "quoted-printable round-trips trailing spaces, dots, From, = and long lines")
    }

    @Test func reminderIsInTheRequestThreadWithTheSameToken() throws {
        let token = ReplyToken()
        let request = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: token)
        var context = OutboundFixtures.context()
        context.reminderNumber = 2
        let reminder = try OutboundFixtures.composer.compose(.reminder, context: context, token: token,
                                                             inReplyTo: request.messageID)
        let parsed = try ParsedByPython.parse(reminder.rfc5322())
        #expect(parsed.defects.isEmpty)
        #expect(parsed.inReplyTo == request.messageID)
        #expect(parsed.references == request.messageID)
        #expect(parsed.replyTo == "approvals+\(token.value)@example.org")
        #expect(parsed.messageID != request.messageID)
        #expect(parsed.subject.hasPrefix("[signoff \(MailComposer.subjectTag(requestID: "q-0001"))] Reminder: "))
        #expect(try #require(parsed.text).contains("Reminder 2: this request is still waiting for your answer."))
    }

    @Test(arguments: MailTemplateKind.allCases)
    func everyKindComposesToACleanMessage(kind: MailTemplateKind) throws {
        var context = OutboundFixtures.context()
        context.decision = .init(outcome: "approved", reason: "Looks <good> & done", by: "editor@example.org", at: Date(timeIntervalSince1970: 1_795_400_000))
        context.clarificationProblem = "the first line has no APPROVE or REJECT"
        context.failure = .init(recipient: "editor@example.org", kind: "request", error: "550 5.1.1 User unknown")
        let mail = try OutboundFixtures.composer.compose(kind, context: context,
                                                         to: kind == .failure ? OutboundFixtures.owner : nil,
                                                         token: kind == .failure ? nil : ReplyToken())
        let parsed = try ParsedByPython.parse(mail.rfc5322())
        #expect(parsed.defects.isEmpty, "\(kind): defects \(parsed.defects)")
        #expect(parsed.text == mail.text)
        #expect(parsed.html == mail.html)
        #expect(!mail.subject.isEmpty && !mail.subject.contains("\n"))
    }

    @Test func lineBreaksInNamesAddressesOrSubjectCannotAddHeaders() throws {
        let mail = MailMessage(from: EmailAddress("a@example.org", displayName: "Eve\r\nBcc: victim@example.org"),
                               to: [EmailAddress("b@example.org\r\nX-Injected: 1")],
                               subject: "Hi\r\nX-Injected: 2", text: "t")
        let head = String(decoding: mail.rfc5322(), as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        #expect(!head.contains("\r\nBcc:"))
        #expect(!head.contains("\r\nX-Injected"))
        let parsed = try ParsedByPython.parse(mail.rfc5322())
        #expect(parsed.subject == "Hi X-Injected: 2")
    }

    @Test func textOnlyMessageIsASinglePart() throws {
        let mail = MailMessage(from: EmailAddress("a@example.org"), to: [EmailAddress("b@example.org")],
                               subject: "Plain", text: "Just text. Ünïcode.\n")
        let parsed = try ParsedByPython.parse(mail.rfc5322())
        #expect(parsed.defects.isEmpty)
        #expect(parsed.contentType == "text/plain")
        #expect(parsed.text == "Just text. Ünïcode.\n")
    }

    @Test func quotedPrintableBreaksAt76ColumnsAndEncodesTrailingSpaceLeadingDotAndFrom() {
        func qp(_ s: String) -> String { String(decoding: QuotedPrintable.encode(s), as: UTF8.self) }
        let x76 = String(repeating: "x", count: 76)
        #expect(qp(x76) == x76, "a 76-character line needs no soft break")
        #expect(qp(x76 + "y") == String(repeating: "x", count: 75) + "=\r\nxy")
        #expect(qp(String(repeating: "x", count: 74) + "=") == String(repeating: "x", count: 74) + "=\r\n=3D",
                "an =XX is never split by a soft break")
        #expect(qp("end \n.dot\nFrom me\nFrom\r\nx\ty\t") == "end=20\r\n=2Edot\r\n=46rom me\r\nFrom\r\nx\ty=09")
        #expect(qp("café\r\na=b\rc") == "caf=C3=A9\r\na=3Db\r\nc")
        #expect(qp("") == "")
    }

    @Test func quotedPrintableOfAnyTextDecodesBackWithShortLines() {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["a", "b ", " ", "\t", "=", ".", "From ", "é", "東", "👩‍👩‍👧", "\n", "\r\n", "\r", "x=y", "<p>"]
        for _ in 0..<300 {
            let count = Int(rng.next() % 120)
            let text = (0..<count).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let encoded = QuotedPrintable.encode(text)
            let lines = String(decoding: encoded, as: UTF8.self).components(separatedBy: "\r\n")
            #expect(lines.allSatisfy { $0.utf8.count <= 76 }, "\(text.debugDescription)")
            #expect(encoded.allSatisfy { $0 == 0x0D || $0 == 0x0A || (0x20...0x7E).contains($0) || $0 == 0x09 })
            let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
                .replacingOccurrences(of: "\n", with: "\r\n")
            #expect(TransferEncoding.decodeQuotedPrintable(encoded[...]) == Array(normalized.utf8), "\(text.debugDescription)")
        }
    }

    @Test func replyToSubaddressMatchesWithSubaddressForEveryAddressShape() {
        var untrimmed = EmailAddress("approvals@example.org")
        untrimmed.address = " approvals@Example.ORG "
        let addresses = [EmailAddress("approvals@example.org", displayName: "Approvals"), EmailAddress("Approvals@Example.ORG"),
                         EmailAddress("approvals+old@example.org"), EmailAddress("no-at-sign"), EmailAddress("ünï@exämple.org"),
                         EmailAddress("a@b@c.org"), untrimmed]
        for address in addresses {
            let token = ReplyToken()
            let fast = MailComposer.subaddressed(address, token.value)
            let reference = address.withSubaddress(token.value)
            #expect(fast.address == reference.address && fast.displayName == reference.displayName, "\(address.address)")
        }
        #expect(MailComposer.subaddressed(EmailAddress("Approvals@Example.ORG"), "tok").address == "Approvals+tok@example.org")
    }

    @Test func messageIDsAre128RandomBitsInTheSendersDomain() {
        var seen = Set<String>()
        for _ in 0..<100 {
            let id = MailMessage.makeMessageID(domain: "example.org")
            #expect(id.hasPrefix("<") && id.hasSuffix("@example.org>"))
            let hex = id.dropFirst().prefix(while: { $0 != "@" })
            #expect(hex.count == 32 && hex.allSatisfy { "0123456789abcdef".contains($0) })
            seen.insert(id)
        }
        #expect(seen.count == 100)
        #expect(MailMessage.makeMessageID(domain: "").hasSuffix("@signoff.invalid>"))
    }

    @Test func rfc5322DateIsEnglishUTC() {
        #expect(MailDate.format(Date(timeIntervalSince1970: 0)) == "Thu, 1 Jan 1970 00:00:00 +0000")
        #expect(MailDate.format(Date(timeIntervalSince1970: 1_795_242_396)) == "Sat, 21 Nov 2026 06:26:36 +0000")
    }
}

struct OutboundTokenTests {
    @Test func tokenIs26LowerCaseBase32CharactersAndUnique() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let token = ReplyToken()
            #expect(token.value.count == 26)
            #expect(token.value.allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
            seen.insert(token.value)
        }
        #expect(seen.count == 200)
    }

    @Test func base32MatchesRFC4648VectorsLowerCasedWithoutPadding() {
        #expect(ReplyToken.base32(Array("f".utf8)) == "my")
        #expect(ReplyToken.base32(Array("foob".utf8)) == "mzxw6yq")
        #expect(ReplyToken.base32(Array("foobar".utf8)) == "mzxw6ytboi")
    }

    @Test func storedHashIsSHA256HexOfTheLowerCaseToken() throws {
        let token = try #require(ReplyToken(parsing: "MZXW6YTBOIMZXW6YTBOIMZXW6Y"))
        #expect(token.value == "mzxw6ytboimzxw6ytboimzxw6y")
        // sha256("abc") is the FIPS 180-2 example.
        #expect(ReplyToken.sha256Hex(of: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(token.sha256Hex == ReplyToken.sha256Hex(of: "MZXW6YTBOIMZXW6YTBOIMZXW6Y"))
        #expect(token.sha256Hex.count == 64)
        #expect(!"\(token)".contains(token.value), "description never shows the token")
        #expect(ReplyToken(parsing: "too-short") == nil)
        #expect(ReplyToken(parsing: "mzxw6ytboimzxw6ytboimzxw61") == nil, "1 is not in the alphabet")
    }
}

struct OutboundRetryPolicyTests {
    let policy = MailRetryPolicy(baseDelay: .seconds(60), multiplier: 2, maxDelay: .seconds(3600), jitter: 0.5, maxAttempts: 5)

    @Test func delayDoublesPerAttemptUpToTheCap() {
        #expect(policy.delay(afterAttempt: 1, random: 0) == .seconds(60))
        #expect(policy.delay(afterAttempt: 2, random: 0) == .seconds(120))
        #expect(policy.delay(afterAttempt: 4, random: 0) == .seconds(480))
        #expect(policy.delay(afterAttempt: 20, random: 0) == .seconds(3600))
    }

    @Test func jitterTakesUpToHalfTheDelayOff() {
        #expect(policy.delay(afterAttempt: 2, random: 0.5) == .seconds(90))
        #expect(policy.delay(afterAttempt: 2, random: 0.9) == .seconds(66))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let d = policy.delay(afterAttempt: 3, using: &rng)
            #expect(d >= .seconds(120) && d <= .seconds(240))
        }
    }

    @Test func retriesStopAfterMaxAttempts() {
        #expect(policy.shouldRetry(afterAttempt: 4))
        #expect(!policy.shouldRetry(afterAttempt: 5))
    }
}
