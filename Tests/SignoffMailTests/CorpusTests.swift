import Foundation
import Testing
@testable import SignoffMail

/// Every corpus reply: unmodified it decides nothing; with a decision line put where the client
/// puts the reply text (same transfer encoding and charset), exactly that decision comes back.
struct CorpusTests {
    static let plainFiles = Corpus.replyParserCases + Corpus.trimmerCases.map { "discourse-email_reply_trimmer/emails/\($0)" }
    static let allFiles = plainFiles + Corpus.talonMessages + Corpus.talonHTML

    static func delivered(_ file: String) throws -> [UInt8] {
        let bytes = try Corpus.bytes(file)
        if file.hasSuffix(".eml") { return CorpusEditing.deliver(bytes) }
        return CorpusEditing.wrap(bytes, html: file.hasSuffix(".html"))
    }

    static func classifier(expected: ExpectedResponse = .approval(rejectReasonRequired: true)) -> InboundClassifier {
        let info = InboundTokenInfo(requestID: "req", reviewer: CorpusEditing.reviewerAddress, expiresAt: nil, state: .open, expected: expected)
        return InboundClassifier(config: InboundConfig(replyAddress: EmailAddress("approvals@signoff.example.org"), strictAuthservID: nil),
                                 lookup: { $0 == CorpusEditing.tokenValue ? info : nil })
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func theCorporaArePresent() {
        #expect(Self.plainFiles.count == 86, "expected 22 + 64 plain replies under \(Corpus.root.path)")
        #expect(Corpus.talonMessages.count == 13)
        #expect(Corpus.talonHTML.count == 11)
    }

    @Test(arguments: allFiles)
    func unmodifiedRepliesDecideNothing(file: String) async throws {
        let r = try await Self.classifier().classify(try Self.delivered(file), now: Self.now)
        #expect(r.outcome != .applied, "\(file) decided \(String(describing: r.decision))")
        #expect([.ambiguous, .invalidValue].contains(r.outcome), "\(file): \(r.outcome) \(r.reason)")
    }

    @Test(arguments: allFiles)
    func aDecisionLineOnTopOfTheReplyIsRead(file: String) async throws {
        let original = try Self.delivered(file)
        // A reason or comment runs up to the first quoted (`>`) line of the visible text.
        let fullVisible = ReplyExtractor.visibleText(try #require(try MIMEMessage.parse(original).textBody()))
        let originalVisible = fullVisible.split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { !$0.hasPrefix(">") }.joined(separator: "\n")
            .replacingOccurrences(of: #"^\s*\n|\s+$"#, with: "", options: .regularExpression)

        let reason = "The totals in row 3 do not match — please recheck (café ß)."
        let rejected = try CorpusEditing.insert("REJECT: \(reason)", into: original)
        let r = try await Self.classifier().classify(rejected, now: Self.now)
        let expectedReason = originalVisible.isEmpty ? reason : reason + "\n" + originalVisible
        #expect(r.outcome == .applied, "\(file): \(r.outcome) \(r.reason)")
        #expect(r.decision == .reject(reason: expectedReason), "\(file)")

        let approved = try CorpusEditing.insert("APPROVE", into: original)
        let a = try await Self.classifier().classify(approved, now: Self.now)
        #expect(a.decision == .approve(comment: originalVisible.isEmpty ? nil : originalVisible), "\(file): \(a.outcome) \(a.reason)")

        let valued = try CorpusEditing.insert("VALUE: 1250.50", into: original)
        let v = try await Self.classifier(expected: .value(.number)).classify(valued, now: Self.now)
        #expect(v.decision == .value(.number(Decimal(string: "1250.50")!)), "\(file): \(v.outcome) \(v.reason)")
    }

    @Test(arguments: Corpus.files("mailgun-talon/standard_replies", extensions: ["eml"]))
    func talonStandardRepliesShowTheirKnownReplyText(file: String) throws {
        let text = try #require(try MIMEMessage.parse(try Corpus.bytes(file)).textBody())
        #expect(ReplyExtractor.visibleText(text) == "Hello", "\(file)")
    }
}
