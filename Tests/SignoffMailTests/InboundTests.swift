import Foundation
import Testing
@testable import SignoffMail

private let replyAddress = EmailAddress("approvals@signoff.example.org")
private let reviewer = EmailAddress("Editor@Example.org")
private let token = "k7xq3m2abcdefghijklmnopqrs"
private let requestMessageID = "req-1@signoff.example.org"

private func tokenInfo(state: InboundTokenInfo.State = .open, expires: Date? = Date(timeIntervalSince1970: 2_000_000_000),
               expected: ExpectedResponse = .approval(rejectReasonRequired: true)) -> InboundTokenInfo {
    InboundTokenInfo(requestID: "r1", runID: "run1", reviewer: reviewer, expiresAt: expires, state: state,
                     expected: expected, issuedMessageIDs: [requestMessageID])
}

private func classifier(_ info: InboundTokenInfo? = tokenInfo(), strict: String? = nil, seen: Set<String> = []) -> InboundClassifier {
    InboundClassifier(config: InboundConfig(replyAddress: replyAddress, strictAuthservID: strict),
                      lookup: { t in t == token ? info : nil }, seen: { seen.contains($0) })
}

private let now = Date(timeIntervalSince1970: 1_800_000_000)

/// A reply as a client would send it, after delivery (trace headers on top).
private func reply(_ body: String, headers extra: [String] = [], from: String = "Editor <editor@example.org>",
           to: String = "approvals+\(token)@signoff.example.org", trace: Bool = true, messageID: String = "<m1@client.example>") -> [UInt8] {
    var h: [String] = []
    if trace {
        h += ["Return-Path: <editor@example.org>", "Delivered-To: approvals+\(token)@signoff.example.org",
              "Authentication-Results: mx.signoff.example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"]
    }
    h += extra
    h += ["From: \(from)", "To: \(to)", "Subject: Re: [signoff 7f3a] Publish the report?", "Message-ID: \(messageID)",
          "In-Reply-To: <\(requestMessageID)>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return Array((h.joined(separator: "\r\n") + "\r\n\r\n" + body.replacingOccurrences(of: "\n", with: "\r\n")).utf8)
}

struct InboundClassifierTests {
    @Test func appliesAnAuthenticUnambiguousApproval() async throws {
        let r = try await classifier(strict: "mx.signoff.example.org").classify(reply("APPROVE: ship it\n\nOn Mon, Signoff <approvals@signoff.example.org> wrote:\n> APPROVE or REJECT"), now: now)
        #expect(r.outcome == .applied, "\(r.reason)")
        #expect(r.decision == .approve(comment: "ship it"))
        #expect(r.requestID == "r1")
        #expect(r.tokenHash == InboundClassifier.tokenHash(token))
        #expect(r.dedupeKey == "mid:m1@client.example")
    }

    @Test func rejectsAReplyFromAnotherSender() async throws {
        let r = try await classifier().classify(reply("APPROVE", from: "Mallory <mallory@evil.example>"), now: now)
        #expect(r.outcome == .senderMismatch)
        #expect(r.outcome.quarantines)
    }

    @Test func senderAndReturnPathDoNotCountOnlyFrom() async throws {
        let r = try await classifier().classify(reply("APPROVE", headers: ["Sender: editor@example.org"], from: "mallory@evil.example"), now: now)
        #expect(r.outcome == .senderMismatch)
        let two = try await classifier().classify(reply("APPROVE", from: "editor@example.org, mallory@evil.example"), now: now)
        #expect(two.outcome == .senderMismatch)
    }

    @Test func comparesTheReviewerCaseInsensitivelyWithIDNADomains() async throws {
        let info = InboundTokenInfo(requestID: "r1", reviewer: EmailAddress("jörg@bücher.example"), expiresAt: nil, state: .open,
                                    expected: .approval(rejectReasonRequired: true))
        let r = try await classifier(info).classify(reply("APPROVE", from: "Jörg <JÖRG@xn--bcher-kva.EXAMPLE>"), now: now)
        #expect(r.outcome == .applied, "\(r.reason)")
    }

    @Test func strictModeIgnoresForeignAuthservIDs() async throws {
        let forged = reply("APPROVE", headers: ["Authentication-Results: mx.evil.example; dmarc=pass header.from=example.org"], trace: false)
        let r = try await classifier(strict: "mx.signoff.example.org").classify(forged, now: now)
        #expect(r.outcome == .authFailed)
        let failing = reply("APPROVE", headers: ["Delivered-To: approvals+\(token)@signoff.example.org",
                                                 "Authentication-Results: mx.signoff.example.org; dkim=fail; dmarc=fail"], trace: false)
        #expect(try await classifier(strict: "mx.signoff.example.org").classify(failing, now: now).outcome == .authFailed)
        let alignedDKIM = reply("APPROVE", headers: ["Authentication-Results: mx.signoff.example.org (comment); dkim=pass (ok) header.d=mail.example.org; dmarc=none"], trace: false)
        #expect(try await classifier(strict: "mx.signoff.example.org").classify(alignedDKIM, now: now).outcome == .applied)
        // a forged "pass" with our id below our MTA's real "fail" does not count
        let forgedBelow = reply("APPROVE", headers: ["Delivered-To: approvals+\(token)@signoff.example.org",
                                                     "Authentication-Results: mx.signoff.example.org; dmarc=fail",
                                                     "Authentication-Results: mx.signoff.example.org; dmarc=pass"], trace: false)
        #expect(try await classifier(strict: "mx.signoff.example.org").classify(forgedBelow, now: now).outcome == .authFailed)
        // without strict mode the same forged message is only sender-checked
        #expect(try await classifier().classify(forged, now: now).outcome == .applied)
    }

    @Test func readsTheTokenFromTheTopmostTraceHeaderThenToAndCc() {
        let h = MIMEMessage.parseHeaders(Array("Delivered-To: approvals+top@signoff.example.org\nX-Original-To: approvals+lower@signoff.example.org\nTo: approvals+to@signoff.example.org\n\n".utf8)[...])
        #expect(Authenticity.token(in: h, replyAddress: replyAddress) == "top")
        let h2 = MIMEMessage.parseHeaders(Array("To: Someone <x@y.org>\nCc: \"Approvals\" <Approvals+CcTok@Signoff.Example.org>\n\n".utf8)[...])
        #expect(Authenticity.token(in: h2, replyAddress: replyAddress) == "cctok")
        let h3 = MIMEMessage.parseHeaders(Array("To: approvals+tok@other.example\n\n".utf8)[...])
        #expect(Authenticity.token(in: h3, replyAddress: replyAddress) == nil)
    }

    @Test func unknownOrMissingTokensAreUnmatched() async throws {
        #expect(try await classifier().classify(reply("APPROVE", to: "approvals+nope@signoff.example.org", trace: false), now: now).outcome == .unmatched)
        #expect(try await classifier().classify(reply("APPROVE", to: "approvals@signoff.example.org", trace: false), now: now).outcome == .unmatched)
    }

    @Test func expiredUsedDecidedAndRevokedTokensDecideNothing() async throws {
        #expect(try await classifier(tokenInfo(expires: now.addingTimeInterval(-1))).classify(reply("APPROVE"), now: now).outcome == .expired)
        #expect(try await classifier(tokenInfo(state: .used)).classify(reply("APPROVE"), now: now).outcome == .alreadyDecided)
        #expect(try await classifier(tokenInfo(state: .decided)).classify(reply("APPROVE"), now: now).outcome == .alreadyDecided)
        #expect(try await classifier(tokenInfo(state: .revoked)).classify(reply("APPROVE"), now: now).outcome == .expired)
    }

    @Test func aThreadPointingAtAnotherRequestIsQuarantined() async throws {
        let raw = String(decoding: reply("APPROVE"), as: UTF8.self).replacingOccurrences(of: "In-Reply-To: <\(requestMessageID)>", with: "In-Reply-To: <req-2@signoff.example.org>")
        let r = try await classifier().classify(Array(raw.utf8), now: now)
        #expect(r.outcome == .unmatched)
        #expect(r.outcome.quarantines)
        #expect(r.reason.contains("disagree"))
    }

    @Test func duplicatesAreRecognisedByMessageIDOrBytes() async throws {
        #expect(try await classifier(seen: ["mid:m1@client.example"]).classify(reply("APPROVE"), now: now).outcome == .duplicate)
        let noID = Array(String(decoding: reply("APPROVE"), as: UTF8.self).replacingOccurrences(of: "Message-ID: <m1@client.example>\r\n", with: "").utf8)
        let first = try await classifier().classify(noID, now: now)
        #expect(first.dedupeKey.hasPrefix("sha256:"))
        #expect(try await classifier(seen: [first.dedupeKey]).classify(noID, now: now).outcome == .duplicate)
    }

    @Test func ambiguousAndInvalidRepliesAskForClarification() async throws {
        let r = try await classifier().classify(reply("yes please"), now: now)
        #expect(r.outcome == .ambiguous)
        #expect(r.wantsClarification)
        let v = try await classifier(tokenInfo(expected: .value(.number))).classify(reply("VALUE: lots"), now: now)
        #expect(v.outcome == .invalidValue)
    }

    @Test func oversizedAndGarbageMessagesAreQuarantined() async throws {
        let big = [UInt8](repeating: 0x41, count: 10 * 1024 * 1024 + 1)
        #expect(try await classifier().classify(big, now: now).outcome == .tooLarge)
        #expect(try await classifier().classify(Array("\n\n\nno headers".utf8), now: now).outcome == .unparseable)
        let longReason = try await classifier().classify(reply("REJECT: " + String(repeating: "word ", count: 900)), now: now)
        #expect(longReason.outcome == .tooLarge)
    }
}

struct AutomaticMailTests {
    private func verdict(_ headers: [String], contentType: String = "text/plain", body: String = "APPROVE") throws -> AutomaticMailDetector.Verdict? {
        let raw = (["From: Editor <editor@example.org>", "Subject: Re: request", "Content-Type: \(contentType)"] + headers).joined(separator: "\n") + "\n\n" + body
        return AutomaticMailDetector.classify(try MIMEMessage.parse(Array(raw.utf8)))
    }

    @Test(arguments: [
        "Return-Path: <>", "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated (vacation)", "X-Autoreply: yes",
        "X-Autorespond: x", "Precedence: bulk", "Precedence: junk", "Precedence: list", "Precedence: auto_reply",
        "List-Id: <team.lists.example.org>",
    ])
    func automaticHeadersAreRecognised(header: String) throws {
        guard case .automatic = try verdict([header]) else { Issue.record("\(header) not automatic"); return }
    }

    @Test(arguments: [
        "Out of Office: Re: request", "Automatic reply: Publish the report?", "Abwesenheitsnotiz: Re: request",
        "Automatische Antwort: Re: x", "Réponse automatique : Re: x", "Absence du bureau", "Respuesta automática: Re: x",
        "Fuera de la oficina", "[EXTERNAL] Out of office: x",
    ])
    func outOfOfficeSubjectsAreAutomatic(subject: String) throws {
        let raw = "From: editor@example.org\nSubject: \(subject)\n\nAPPROVE"
        guard case .automatic = AutomaticMailDetector.classify(try MIMEMessage.parse(Array(raw.utf8))) else { Issue.record("\(subject) not automatic"); return }
    }

    @Test func humanRepliesAndAutoResponseSuppressAreNotAutomatic() throws {
        #expect(try verdict(["X-Auto-Response-Suppress: All", "Auto-Submitted: no", "Precedence: normal"]) == nil)
        let raw = "From: editor@example.org\nSubject: Re: Vacation policy out of office rules\n\nAPPROVE"
        #expect(AutomaticMailDetector.classify(try MIMEMessage.parse(Array(raw.utf8))) == nil)
    }

    @Test func bouncesCarryTheOriginalMessageID() throws {
        let raw = """
        From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
        Subject: Undelivered Mail Returned to Sender
        Content-Type: multipart/report; report-type=delivery-status; boundary="b"

        --b
        Content-Type: text/plain

        APPROVE
        --b
        Content-Type: message/delivery-status

        Final-Recipient: rfc822; editor@example.org
        Action: failed
        --b
        Content-Type: text/rfc822-headers

        From: approvals@signoff.example.org
        Message-ID: <req-1@signoff.example.org>
        Subject: Publish?
        --b--
        """
        #expect(AutomaticMailDetector.classify(try MIMEMessage.parse(Array(raw.utf8))) ==
                .bounce(reason: "bounce: delivery status report (multipart/report)", originalMessageID: "req-1@signoff.example.org"))
        let plain = "From: postmaster@example.org\nSubject: failure\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nfailed\n--x\nContent-Type: message/rfc822\n\nMessage-ID: <abc@h>\nSubject: s\n\nbody\n--x--\n"
        guard case .bounce(_, let id) = AutomaticMailDetector.classify(try MIMEMessage.parse(Array(plain.utf8))) else { Issue.record("postmaster mail not a bounce"); return }
        #expect(id == "abc@h")
    }

    @Test func readReceiptsAndGmailReactionsAreAutomatic() throws {
        let mdn = "From: editor@example.org\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\nContent-Type: text/plain\n\nread\n--b\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n--b--\n"
        guard case .automatic = AutomaticMailDetector.classify(try MIMEMessage.parse(Array(mdn.utf8))) else { Issue.record("MDN not automatic"); return }
        let reaction = "From: editor@example.org\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n👍\n--b\nContent-Type: text/vnd.google.email-reaction+json\n\n{\"emoji\":\"👍\",\"version\":1}\n--b--\n"
        guard case .automatic = AutomaticMailDetector.classify(try MIMEMessage.parse(Array(reaction.utf8))) else { Issue.record("reaction not automatic"); return }
    }

    @Test func anOutOfOfficeReplyQuotingApproveNeverDecides() async throws {
        let ooo = reply("APPROVE\n\nI am out of the office until Monday.", headers: ["Auto-Submitted: auto-replied"])
        let r = try await classifier().classify(ooo, now: now)
        #expect(r.outcome == .automatic)
        #expect(!r.wantsClarification)
    }
}

struct InboxFileTests {
    private func file(_ json: String) async throws -> InboundResult {
        try await classifier().classifyResponseFile(Array(json.utf8), now: now)
    }

    @Test func appliesAValidResponseFile() async throws {
        let r = try await file(#"{"request": "r1", "token": "\#(token)", "decision": "reject", "reason": "totals wrong", "responder": "editor@example.org"}"#)
        #expect(r.outcome == .applied, "\(r.reason)")
        #expect(r.decision == .reject(reason: "totals wrong"))
    }

    @Test func rejectsUnknownAndDuplicateKeys() async throws {
        #expect(try await file(#"{"request": "r1", "token": "\#(token)", "decision": "approve", "responder": "editor@example.org", "extra": 1}"#).outcome == .unparseable)
        let dup = try await file(#"{"request": "r1", "token": "\#(token)", "decision": "approve", "decision": "reject", "responder": "editor@example.org"}"#)
        #expect(dup.outcome == .unparseable)
        #expect(dup.reason.contains("twice"))
        #expect(try await file(#"{"request": "r1", "token": "\#(token)", "decision": "approve", "\u0064ecision": "reject", "responder": "editor@example.org"}"#).outcome == .unparseable)
    }

    @Test func appliesTheSameTokenRules() async throws {
        #expect(try await file(#"{"request": "r1", "token": "\#(token)", "decision": "approve", "responder": "other@example.org"}"#).outcome == .senderMismatch)
        #expect(try await file(#"{"request": "r2", "token": "\#(token)", "decision": "approve", "responder": "editor@example.org"}"#).outcome == .unmatched)
        #expect(try await file(#"{"request": "r1", "token": "\#(token)", "decision": "reject", "responder": "editor@example.org"}"#).outcome == .ambiguous)
        let expired = try await classifier(tokenInfo(expires: now)).classifyResponseFile(Array(#"{"request": "r1", "token": "\#(token)", "decision": "approve", "responder": "editor@example.org"}"#.utf8), now: now)
        #expect(expired.outcome == .expired)
    }

    @Test func validatesTypedValues() async throws {
        let c = classifier(tokenInfo(expected: .value(.number)))
        let ok = try await c.classifyResponseFile(Array(#"{"request": "r1", "token": "\#(token)", "decision": "value", "value": 12.50, "responder": "editor@example.org"}"#.utf8), now: now)
        #expect(ok.decision == .value(.number(Decimal(string: "12.50")!)))
        let bad = try await c.classifyResponseFile(Array(#"{"request": "r1", "token": "\#(token)", "decision": "value", "value": "12", "responder": "editor@example.org"}"#.utf8), now: now)
        #expect(bad.outcome == .invalidValue)
    }

    @Test func rejectsNonUTF8AndOversizedFiles() async throws {
        #expect(try await classifier().classifyResponseFile([0x7B, 0xFF, 0x7D], now: now).outcome == .unparseable)
        let big = "{\"request\": \"" + String(repeating: "x", count: 70_000) + "\"}"
        #expect(try await file(big).outcome == .tooLarge)
    }
}
