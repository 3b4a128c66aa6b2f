import Foundation
import Testing
@testable import SignoffMail

/// Where Signoff deliberately reads less than the trimmer (never more): text below a forward
/// separator or below a quote header that follows typed text is never part of a decision.
let deliberatelyStricterThanTrimmer: [String: String] = [
    "forwarded_message.txt": "a forwarded message's body is not the reviewer's text",
    "embedded_email_7.txt": "text below a quote header is never read when the reviewer typed above it",
    "embedded_email_17.txt": "text below a second quote header is never read",
    "quote_only.txt": "a reply that is only a quote has no visible text",
]

struct ReplyExtractorTests {
    /// The trimmer's expectations, compared line by line with trailing spaces ignored.
    @Test(arguments: Corpus.trimmerCases.filter { deliberatelyStricterThanTrimmer[$0] == nil })
    func visibleTextMatchesTheTrimmersExpectation(name: String) throws {
        let email = try Corpus.text("discourse-email_reply_trimmer/emails/\(name)")
        let expected = try Corpus.text("discourse-email_reply_trimmer/trimmed/\(name)")
        let got = ReplyExtractor.visibleText(email)
        func norm(_ s: String) -> String {
            s.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.replacingOccurrences(of: #"\s+$"#, with: "", options: .regularExpression) }
                .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(norm(got) == norm(expected), "\(name): expected\n\(norm(expected))\n--- got\n\(norm(got))")
    }

    @Test(arguments: deliberatelyStricterThanTrimmer.keys.sorted())
    func readsNoMoreThanTheTrimmerWhereDeliberatelyStricter(name: String) throws {
        let email = try Corpus.text("discourse-email_reply_trimmer/emails/\(name)")
        let expected = try Corpus.text("discourse-email_reply_trimmer/trimmed/\(name)")
        let got = ReplyExtractor.visibleText(email)
        #expect(got.count < expected.count, "\(name): got \(got.debugDescription)")
    }

    @Test func cutsAtOurReplyAboveMarker() {
        let text = "APPROVE\n\n-- reply above this line --\nAPPROVE or REJECT: reason\n"
        #expect(ReplyExtractor.visibleText(text) == "APPROVE")
    }

    @Test func cutsAtAQuoteHeaderWrappedOverTwoLines() {
        let text = "REJECT: numbers are off\n\nOn Mon, 3 Feb 2026 at 10:00, Signoff <approvals+abc@example.org\n> wrote:\n> APPROVE\n"
        #expect(ReplyExtractor.visibleText(text) == "REJECT: numbers are off")
        let text2 = "Fine\n\nOn Mon, Feb 3, 2026 at 10:00 AM Signoff\n<approvals@example.org> wrote:\n\n> x\n"
        #expect(ReplyExtractor.visibleText(text2) == "Fine")
    }

    @Test(arguments: [
        "Le lun. 3 févr. 2026 à 10:00, Signoff <a@example.org> a écrit :",
        "Am 03.02.2026 um 10:00 schrieb Signoff <a@example.org>:",
        "3 февр. 2026 г., в 10:00, Signoff <a@example.org> написал(а):",
        "在 2026年2月3日，上午10:00，Signoff <a@example.org> 写道：",
        "El lun, 3 feb 2026 a las 10:00, Signoff (<a@example.org>) escribió:",
        "Il giorno lun 3 feb 2026 alle ore 10:00 Signoff <a@example.org> ha scritto:",
        "Op ma 3 feb. 2026 om 10:00 schreef Signoff <a@example.org>:",
        "Den 3 feb. 2026 kl. 10:00 skrev Signoff <a@example.org>:",
        "-----Original Message-----",
        "----- Ursprüngliche Nachricht -----",
        "-- ",
        "Sent from my iPhone",
        "Von meinem iPhone gesendet",
    ])
    func cutsAtLocalizedQuoteHeadersSeparatorsAndSignatures(header: String) {
        let text = "APPROVE: ok\n\n\(header)\n> APPROVE\nREJECT: quoted request text\n"
        #expect(ReplyExtractor.visibleText(text) == "APPROVE: ok")
    }

    @Test func cutsAtOutlookFromSentBlocks() {
        let text = "REJECT: too late\r\n\r\n________________________________\r\nFrom: Signoff <approvals@example.org>\r\nSent: Monday, February 3, 2026 10:00 AM\r\nTo: Editor\r\nSubject: Approve?\r\n\r\nAPPROVE\r\n"
        #expect(ReplyExtractor.visibleText(text) == "REJECT: too late")
    }

    @Test func keepsASentenceMentioningWroteWithoutHeaderShape() {
        let text = "REJECT: as the auditor wrote:\nthe totals do not match"
        #expect(ReplyExtractor.visibleText(text) == text)
    }
}
