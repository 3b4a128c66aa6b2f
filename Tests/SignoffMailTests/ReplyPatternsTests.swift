import Foundation
@testable import SignoffMail
import Testing

/// The byte-level matchers for plain ASCII lines give exactly the answers of the patterns they
/// stand in for, on every line of the corpora and on lines built to sit at the patterns' edges.
struct ReplyPatternsTests {
    /// Every line of every corpus file, plus crafted and randomly assembled lines.
    static let lines: [String] = {
        var out: Set<String> = []
        let folders = ["discourse-email_reply_trimmer/emails", "github-email_reply_parser", "mailgun-talon/standard_replies", "mailgun-talon"]
        for folder in folders {
            for file in Corpus.files(folder, extensions: ["txt", "eml", "html"]) {
                guard let text = try? Corpus.text(file) else { continue }
                for line in TextFast.lines(text) where line.utf8.count < 400 {
                    out.insert(line)
                    out.insert(String(line.drop(while: { $0 == " " || $0 == ">" })))
                }
            }
        }
        let crafted = [
            "On Mon, 3 Feb 2026 at 10:00, Signoff <approvals@signoff.bench> wrote:", "on 2026-02-03 someone WROTE:", "Am 03.02.2026 schrieb X:",
            "-----Original Message-----", "--- original message ---", "____ Forwarded message ____", "== mensaje original ==", "-Original Message",
            "-_ original message _-", "Original Message ---", "Begin forwarded message:", "begin forwarded message", "Début du message réexpédié :",
            "debut du message reexpedie   :", "anfang der weitergeleiteten nachricht:", "From: someone", "> * From * : x", "fromage: cheese", "*From:* Ann",
            "De : Jean", "Von: Hans", "Lähettäjä: x", "lahettaja: x", "Sent from my iPhone", "--", "-- ", "__", "Get Outlook for Android",
            "napisal(a):", "napisała:", "kirjoitti 2020:", "2016-10-24 15:36 GMT+02:00 Name <a@b>:", "El dia 3, X escribió:", "-- on Monday X wrote:",
            "d. 3 wrote 10:00 --", "le 3 février, a écrit :", "1999 wrote:", "x1999 wrote:", "_2000_ wrote:", "12:34 wrote", "on:wrote:", "on",
            "writes", "quoting someone writes:", "in data 3 ha scritto:", "a las 10:00 escribio:", "w dniu 3 napisal:", "yazdi:", "irta:",
            "\tOn\tMon wrote:\t", "On Mon wrote: ", "On Mon wrote:-- ", "==== forwarded message", "forwarded message ====  ", "forwarded message == --",
        ]
        out.formUnion(crafted)
        // Random lines from pieces of the patterns, to reach odd combinations.
        let pieces = ["on ", "On", "wrote", "WROTE", ":", " ", "\t", "--", "-", "__", "==", "=", "*", ">", "@", "12:34", "1:2", "1999", "2020", "x",
                      "original message", "Forwarded Message", "from", "From", " de ", "schrieb", "napisal(a)", "a ecrit", "d.", "el dia", "(a)",
                      "sent from my", "irta", "yazdi", "_", "0", "9", "begin forwarded message", "debut du message reexpedie", "quoting", "le"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let n = Int.random(in: 1...7, using: &rng)
            out.insert((0..<n).map { _ in pieces.randomElement(using: &rng)! }.joined())
        }
        return out.sorted()
    }()

    private static func regex(_ r: NSRegularExpression, _ s: String) -> Bool {
        r.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    @Test func theASCIIMatchersAgreeWithThePatterns() {
        var checked = 0
        for line in Self.lines {
            let trimmed = line.trimmedSpaces
            if ReplyPatternsASCII.cannotBeSignature(trimmed) {
                #expect(!Self.regex(ReplyExtractor.signatureRegex, trimmed), "signature prefilter: \(trimmed.debugDescription)")
            }
            if ReplyPatternsASCII.cannotBeDateFirst(trimmed) {
                #expect(!Self.regex(ReplyExtractor.dateFirst, trimmed), "dateFirst prefilter: \(trimmed.debugDescription)")
            }
            let cases: [(NSRegularExpression, (ReplyPatternsASCII.Bytes) -> Bool, String)] = [
                (ReplyExtractor.separatorRegex, ReplyPatternsASCII.separator, "separator"),
                (ReplyExtractor.wroteWord, ReplyPatternsASCII.wroteWord, "wroteWord"),
                (ReplyExtractor.headerEnd, ReplyPatternsASCII.headerEnd, "headerEnd"),
                (ReplyExtractor.shapeRegex, ReplyPatternsASCII.shape, "shape"),
                (ReplyExtractor.leadRegex, ReplyPatternsASCII.lead, "lead"),
                (ReplyExtractor.fromKey, ReplyPatternsASCII.fromKey, "fromKey"),
            ]
            for s in [line, trimmed] {
                for (pattern, fast, name) in cases {
                    guard let answer = ReplyPatternsASCII.withPlainASCII(s, fast) else { continue }
                    checked += 1
                    #expect(answer == Self.regex(pattern, s), "\(name): \(s.debugDescription)")
                }
            }
        }
        #expect(checked > 100_000)
    }

    @Test func theExactWhitespaceTrimAgreesWithFoundation() {
        let samples = Self.lines.prefix(5_000) + [" \u{00A0}x\u{2003} ", "\t\t", "", " é ", "é", " a\u{3000}", "\u{3000}a ", "x\u{0301} "]
            + (0..<0x10000).compactMap { Unicode.Scalar($0) }.filter { !$0.properties.isWhitespace || $0.value > 0x0D }.map { " \($0)x\($0)\t" }
        for s in samples {
            #expect(TextFast.trimWhitespaces(s) == s.trimmingCharacters(in: .whitespaces), "\(s.debugDescription)")
        }
    }
}

/// The byte-level shortcuts of the import path (quote, blank and separator lines, the command
/// prefix, the marker phrase, one-character searches, header values, address comparison) give
/// exactly the answers of the Character / Foundation code they stand in for.
struct ByteShortcutTests {
    static let samples: [String] = {
        var out = ReplyPatternsTests.lines
        let pieces = ["APPROVE", "approved", "Reject", "value", "delegate", "*", "_", " ", "\t", ":", "-", ",", ".", "—", ">", "> ", "é", "e\u{301}",
                      ">\u{301}", " \u{301}", "/", "/\u{301}", "@", "@\u{301}", "reply above this line", "REPLY ABOVE THIS LINE", "=", "#", "~", "+",
                      "ᐧ", "\r", "\n", "\u{0B}", "\u{0C}", "\u{A0}", "x", "K\u{212A}", "İ", "(", ")", ";", "\"", "\\", "text/plain", "charset=", "utf-8"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...6, using: &rng)
            out.append((0..<n).map { _ in pieces.randomElement(using: &rng)! }.joined())
        }
        return out
    }()

    @Test func lineShortcutsAgreeWithTheCharacterDefinitions() {
        for s in Self.samples {
            #expect(ReplyExtractor.isBlank(s) == s.allSatisfy { $0.isWhitespace }, "isBlank \(s.debugDescription)")
            #expect(ReplyExtractor.isQuoted(s) == (s.drop(while: { $0 == " " }).first == ">"), "isQuoted \(s.debugDescription)")
            let chars = s.filter { !$0.isWhitespace }
            #expect(ReplyExtractor.isSeparatorOnly(s) == (!chars.isEmpty && chars.allSatisfy { "-_=*#~+—–ᐧ.".contains($0) }), "separator \(s.debugDescription)")
            #expect(ReplyExtractor.containsMarkerPhrase(s) == s.lowercased().contains("reply above this line"), "marker \(s.debugDescription)")
            let t = s.drop(while: { $0 == "*" || $0 == "_" })
            let word = t.prefix(while: { $0.isLetter }).lowercased()
            var command = false
            if ["approve", "approved", "reject", "rejected", "value", "delegate"].contains(word) {
                let rest = t.dropFirst(word.count).drop(while: { $0 == "*" || $0 == "_" || $0 == " " })
                command = rest.isEmpty || rest.first.map { ":-,.—–：".contains($0) } == true
            }
            #expect(ReplyExtractor.startsWithCommand(s) == command, "command \(s.debugDescription)")
            #expect(TextFast.containsCharacter(s, 0x2F) == s.contains("/"), "contains / \(s.debugDescription)")
            #expect(TextFast.containsCharacter(s, 0x40) == s.contains("@"), "contains @ \(s.debugDescription)")
            #expect(TextFast.lines(s) == s.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).map(String.init),
                    "lines \(s.debugDescription)")
        }
    }

    @Test func addressShortcutsAgreeWithTheGeneralPath() {
        let addresses = ["Editor@Example.ORG", "a@b.", "approvals+TOK@Signoff.Test", "approvals+@x.org", "nobody", "x+y", "a@b@c.org", "A+B+C@D.e.",
                         "approvals+tok@signoff.test.", "APPROVALS+Tok@SIGNOFF.TEST"]
        let reply = EmailAddress("approvals@signoff.test")
        for a in addresses {
            var e = EmailAddress("")
            e.address = a
            let general = e.localPart.lowercased() + "@" + IDNA.asciiLowercased(e.domain)
            #expect(IDNA.comparable(e) == general, "\(a)")
            let headers = MIMEHeaders(fields: [.init(name: "To", value: a)])
            let local = e.localPart.lowercased()
            var expected: String? = nil
            if let plus = local.firstIndex(of: "+"), String(local[..<plus]) == "approvals", IDNA.asciiLowercased(e.domain) == "signoff.test",
               let tag = e.subaddress?.lowercased(), !tag.isEmpty { expected = tag }
            #expect(Authenticity.token(in: headers, replyAddress: reply) == expected, "\(a)")
        }
    }
}
