import Crypto
import Foundation
@testable import SignoffMail
import Testing

/// The classifier's faster paths give exactly what the definitions they replace give, on varied
/// input (random bytes and lines, the corpora's lines, crafted edge cases).
struct ClassifyFastPathTests {
    @Test func digestHexWrittenInPlaceEqualsTheByteByByteHex() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 31, 32, 33, 100, 1000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(TextFast.hex(contiguous: bytes) == TextFast.hex(bytes))
            let digest = SHA256.hash(data: bytes)
            #expect(TextFast.hex(contiguous: digest) == TextFast.hex(digest))
        }
        #expect(TextFast.hex(contiguous: [0x00, 0x0F, 0xA5, 0xFF] as [UInt8]) == "000fa5ff")
    }

    @Test func tokenHashIsTheSHA256HexOfTheLowerCasedToken() {
        for token in ["abc", "ABCdef123", "Tök", "İx", "", String(repeating: "k", count: 300)] {
            let expected = SHA256.hash(data: Data(token.lowercased().utf8)).map { String(format: "%02x", $0) }.joined()
            #expect(InboundClassifier.tokenHash(token) == expected, "\(token.debugDescription)")
        }
    }
}

/// `ReplyExtractor.visibleText` on lazily split lines gives what the extraction gave on the
/// eagerly split `[String]` lines (the definition, kept here), and `LazyLines` answers every
/// line question exactly as the `[String]` lines do.
struct LazyLinesTests {
    /// The extraction as it was defined on `TextFast.lines` (every line a String).
    static func eagerVisibleText(_ text: String) -> String {
        let lines = TextFast.lines(text)
        var start = 0
        var cut = ReplyExtractor.cutIndex(lines, from: start)
        var rounds = 0
        while rounds < 5, cut < lines.count, lines[start..<cut].allSatisfy(ReplyExtractor.isBlank),
              let headerLength = ReplyExtractor.quoteHeaderLength(lines, at: cut) {
            var next = cut + headerLength
            while next < lines.count, ReplyExtractor.isBlank(lines[next]) || ReplyExtractor.isQuoted(lines[next]) { next += 1 }
            guard next < lines.count else { break }
            start = next
            cut = ReplyExtractor.cutIndex(lines, from: start)
            rounds += 1
        }
        var kept = Array(lines[start..<cut])
        if let lastOwn = kept.lastIndex(where: { !ReplyExtractor.isQuoted($0) && !ReplyExtractor.isBlank($0) }) {
            kept = Array(kept[...lastOwn])
        } else {
            kept = []
        }
        while let last = kept.last, ReplyExtractor.isBlank(last) || ReplyExtractor.isSeparatorOnly(last) { kept.removeLast() }
        while let first = kept.first, ReplyExtractor.isBlank(first) { kept.removeFirst() }
        return kept.map { line in
            var l = Substring(line)
            while let c = l.last, c == " " || c == "\t" { l = l.dropLast() }
            return String(l)
        }.joined(separator: "\n")
    }

    /// Corpus emails, plus texts assembled at random from corpus and crafted lines with mixed line
    /// ends, quotes, blank lines, non-ASCII and combining marks.
    static let texts: [String] = {
        var out: [String] = []
        for folder in ["discourse-email_reply_trimmer/emails", "github-email_reply_parser", "mailgun-talon/standard_replies", "mailgun-talon"] {
            for file in Corpus.files(folder, extensions: ["txt", "eml", "html"]) {
                if let text = try? Corpus.text(file) { out.append(text) }
            }
        }
        let lines = ReplyPatternsTests.lines
        let extra = ["", " ", "\t", "> quoted", ">", " > x", "\u{A0}", "APPROVE: ok ", "REJECT: no\t", "a \u{301}", " \u{301}", ">\u{301}",
                     "-- ", "----", "Sent from my iPhone", "On Mon, 3 Feb 2026 at 10:00, A <a@b.c> wrote:", "From: A", "Sent: x", "To: y",
                     "-- reply above this line --", "ok ✓ ", "é\t", String(repeating: "x", count: 1200), "> " + String(repeating: "y", count: 700)]
        let ends = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let n = Int.random(in: 0...25, using: &rng)
            var t = ""
            for _ in 0..<n {
                t += Bool.random(using: &rng) ? extra.randomElement(using: &rng)! : lines.randomElement(using: &rng)!
                t += ends.randomElement(using: &rng)!
            }
            if Bool.random(using: &rng) { t += extra.randomElement(using: &rng)! }
            out.append(t)
        }
        return out
    }()

    @Test func visibleTextOnLazyLinesEqualsTheEagerDefinition() {
        for text in Self.texts {
            #expect(Array(ReplyExtractor.visibleText(text).utf8) == Array(Self.eagerVisibleText(text).utf8), "\(text.debugDescription)")
        }
    }

    @Test func lazyLinesAnswerLikeTheEagerLines() {
        for text in Self.texts {
            let eager = TextFast.lines(text)
            let lazy = LazyLines(text)
            #expect(lazy.count == eager.count)
            guard lazy.count == eager.count else { continue }
            for i in 0..<eager.count {
                #expect(lazy.utf8Count(at: i) == eager[i].utf8.count)
                #expect(lazy.isQuotedLine(i) == ReplyExtractor.isQuoted(eager[i]), "\(eager[i].debugDescription)")
                #expect(lazy.isBlankLine(i) == ReplyExtractor.isBlank(eager[i]), "\(eager[i].debugDescription)")
                #expect(Array(lazy[i].utf8) == Array(eager[i].utf8))
                #expect(ReplyExtractor.endsReply(in: lazy, at: i) == ReplyExtractor.endsReply(eager, at: i))
            }
        }
    }
}
