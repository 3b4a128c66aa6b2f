import Foundation
import SignoffMail
@testable import SignoffRunner
import SignoffStore
import Testing

/// The batched import (one store transaction per batch) ends every message exactly where the
/// one-message-at-a-time path does, with the same outcomes, rows and notices.
@Suite(.serialized)
struct ImportBatchTests {
    /// The same mixed set of messages, named so both paths see them in the same order.
    private static func mixedMessages(_ f: ImportFixture, tag: String) -> [(String, [UInt8])] {
        let approve = f.reply("APPROVE: fine by me", messageID: "<m1-\(tag)@client.example>")
        var forgedAuth = String(decoding: f.reply("APPROVE", messageID: "<m7-\(tag)@client.example>"), as: UTF8.self)
        forgedAuth = forgedAuth.replacingOccurrences(of: "Authentication-Results: mx.signoff.test;", with: "Authentication-Results: mx.evil.example;")
        let bounce = """
        Return-Path: <>\r
        Delivered-To: approvals@signoff.test\r
        From: Mail Delivery System <MAILER-DAEMON@mx.signoff.test>\r
        To: approvals@signoff.test\r
        Subject: Undelivered Mail Returned to Sender\r
        Message-ID: <m4-\(tag)@mx.signoff.test>\r
        Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        The mail could not be delivered.\r
        --b\r
        Content-Type: message/delivery-status\r
        \r
        Final-Recipient: rfc822; editor@example.org\r
        Action: failed\r
        Status: 5.1.1\r
        --b\r
        Content-Type: text/rfc822-headers\r
        \r
        Message-ID: <\(f.requestMessageID)>\r
        --b--\r

        """
        return [
            ("01.test", approve),
            ("02.test", f.reply("REJECT: no budget", from: "Deputy <deputy@example.org>", token: f.token + "1", messageID: "<m2-\(tag)@client.example>")),
            ("03.test", approve),                                                    // the same message delivered twice
            ("04.test", Array(bounce.utf8)),
            ("05.test", f.reply("APPROVE\n\nI am out of the office.", messageID: "<m5-\(tag)@client.example>", extra: ["Auto-Submitted: auto-replied"])),
            ("06.test", f.reply("APPROVE", from: "Mallory <mallory@evil.example>", messageID: "<m6-\(tag)@client.example>")),
            ("07.test", Array(forgedAuth.utf8)),
            ("08.test", f.reply("yes, looks fine", messageID: "<m8-\(tag)@client.example>")),
        ]
    }

    private static func put(_ messages: [(String, [UInt8])], into m: Maildir) throws {
        for (name, bytes) in messages {
            let tmp = m.root.appendingPathComponent("tmp").appendingPathComponent(name)
            try Data(bytes).write(to: tmp)
            try FileManager.default.moveItem(at: tmp, to: m.newDirectory.appendingPathComponent(name))
        }
    }

    /// Everything a user can observe after an import.
    private struct Observed: Equatable {
        var outcomes: [String: Int]
        var notices: [String]
        var status: RequestStatus?
        var decision: String?
        var votes: [String]
        var inbound: [String]
        var archive: [String]
        var quarantine: [String]
        var requestMailStatus: String?
    }

    private static func observe(_ f: ImportFixture, outcomes: [String: Int], log: ImportNoticeLog, tag: String) async throws -> Observed {
        let request = try await f.store.request(id: f.requestID)
        var inbound: [String] = []
        for i in [1, 2, 4, 5, 6, 7, 8] {   // 3 is 1 delivered again
            let host = i == 4 ? "mx.signoff.test" : "client.example"
            inbound.append("m\(i): \(try await f.store.inboundSeen(dedupeKey: "mid:m\(i)-\(tag)@\(host)")?.rawValue ?? "-")")
        }
        return Observed(outcomes: outcomes, notices: try await ImportNoticeLog.queued(f.store).map { $0.replacingOccurrences(of: f.requestMessageID, with: "REQUEST") }, status: request?.status, decision: request?.decision,
                        votes: try await f.store.votes(requestID: f.requestID).map { "\($0.reviewer):\($0.verdict.rawValue)" },
                        inbound: inbound, archive: f.files("archive"), quarantine: f.files("quarantine"),
                        requestMailStatus: try await f.store.mail(messageID: "<\(f.requestMessageID)>")?.status.rawValue)
    }

    /// The mixed messages imported one at a time (each in its own transaction) in one
    /// installation and by a batched `configure`d pass in another: both must end alike. Returns
    /// what the batched one shows.
    private static func batchedMatchesOneByOne(_ backend: ImportBackend, configure: (inout ImportPass) -> Void) async throws -> Observed {
        let tag = UUID().uuidString.lowercased()
        let reviewers = ["editor@example.org", "deputy@example.org"]
        let single = try await ImportFixture.make(backend, reviewers: reviewers)
        defer { Task { await single.close() } }
        try put(mixedMessages(single, tag: tag), into: single.maildir)
        let singleLog = ImportNoticeLog()
        var singleOutcomes: [String: Int] = [:]
        for name in try single.maildir.pending() {
            let claimed = try #require(try single.maildir.claim(name))
            let o = try await single.pass(notices: singleLog).process(claimed, in: single.maildir, isMail: true)
            singleOutcomes[o.rawValue, default: 0] += 1
        }

        let batched = try await ImportFixture.make(backend, reviewers: reviewers)
        defer { Task { await batched.close() } }
        try put(mixedMessages(batched, tag: tag), into: batched.maildir)
        let batchLog = ImportNoticeLog()
        var pass = batched.pass(notices: batchLog)
        configure(&pass)
        let summary = try await pass.run()
        #expect(summary.errors == 0)

        let a = try await observe(single, outcomes: singleOutcomes, log: singleLog, tag: tag)
        let b = try await observe(batched, outcomes: summary.outcomes, log: batchLog, tag: tag)
        #expect(a == b)
        return b
    }

    @Test(arguments: ImportBackend.allCases)
    func aMixedBatchEndsExactlyAsTheOneByOnePath(backend: ImportBackend) async throws {
        let b = try await Self.batchedMatchesOneByOne(backend) { $0.batchSize = 64 }
        // And both are what EMAIL.md asks for.
        #expect(b.outcomes == ["applied": 1, "already_decided": 2, "duplicate": 1, "bounce": 1, "automatic": 1,
                               "sender_mismatch": 1, "auth_failed": 1])
        #expect(b.decision == "approve" && b.votes == ["editor@example.org:approve"])
        #expect(b.requestMailStatus == "failed")
        #expect(b.archive.count == 6 && b.quarantine.count == 4)
        #expect(b.notices == ["already_decided:deputy@example.org", "already_decided:editor@example.org",
                              "bounced:<REQUEST>", "confirmation:approve:editor@example.org", "decided:except:editor@example.org"])
    }

    /// Past its byte budget a batch keeps no message in memory: each is read again when it is
    /// classified, and everything still ends exactly as one by one (the default batch size).
    @Test(arguments: ImportBackend.allCases)
    func aBatchOverItsByteBudgetReadsItsMessagesWhenClassifiedAndEndsTheSame(backend: ImportBackend) async throws {
        let b = try await Self.batchedMatchesOneByOne(backend) { $0.batchBytes = 1 }
        #expect(b.archive.count + b.quarantine.count == 10)
        #expect(b.decision == "approve")
    }

    /// Small batches: the next batch is claimed, read and its tokens read while the previous
    /// ones are classified and committed (two, or the default three, handed to the store at once),
    /// so replies to one request land in different batches — and still end exactly as one by one.
    @Test(arguments: ImportBackend.allCases, [(1, 2), (2, 2), (3, 2), (1, nil), (2, nil), (3, nil)] as [(Int, Int?)])
    func smallBatchesStagedAheadEndExactlyAsTheOneByOnePath(backend: ImportBackend, sizes: (batch: Int, inFlight: Int?)) async throws {
        _ = try await Self.batchedMatchesOneByOne(backend) { pass in
            pass.batchSize = sizes.batch
            pass.commitsInFlight = sizes.inFlight
        }
    }

    @Test(arguments: ImportBackend.allCases)
    func aCrashAfterTheBatchCommitBeforeTheMovesIsRepaired(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        for i in 0..<5 { try f.maildir.deliver(f.reply(i == 0 ? "APPROVE" : "thanks \(i)", messageID: "<crash-\(i)-\(UUID().uuidString)@c>")) }
        // Claim, classify and commit the batch, then "crash": no file is moved.
        let pass = f.pass()
        let claims = try f.maildir.pending().compactMap { try f.maildir.claim($0) }
        let (prepared, failed) = await pass.prepareAll(claims, in: f.maildir, isMail: true)
        #expect(failed == 0 && prepared.count == 5)
        _ = try await f.store.recordInboundBatch(prepared.map(\.write), now: f.clock)
        #expect(f.files("cur").count == 5 && f.files("archive").isEmpty)
        #expect(try await f.store.request(id: f.requestID)?.status == .answered)

        var repair = f.pass()
        repair.staleClaimSeconds = 0
        let repaired = try await repair.run()
        #expect(repaired.outcomes == ["duplicate": 5])
        #expect(f.files("archive").count == 5 && f.files("cur").isEmpty)
        #expect(try await f.store.votes(requestID: f.requestID).count == 1)
    }
    /// The confirmation is written by the decision's own transaction: a crash right after the
    /// commit (before anything else of the pass) keeps both, and the repair pass queues no second one.
    @Test(arguments: ImportBackend.allCases)
    func theConfirmationIsInTheOutboxInTheSameCommitAsTheDecision(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        try f.maildir.deliver(f.reply("APPROVE", messageID: "<approve-\(UUID().uuidString)@c>"))
        try f.maildir.deliver(f.reply("yes, looks fine", messageID: "<unclear-\(UUID().uuidString)@c>"))
        let composer = MailingNotices()
        let pass = f.pass(notices: composer)
        let claims = try f.maildir.pending().compactMap { try f.maildir.claim($0) }
        let (prepared, failed) = await pass.prepareAll(claims, in: f.maildir, isMail: true)
        #expect(failed == 0 && prepared.count == 2)
        #expect(try await f.store.mail(messageID: MailingNotices.id("confirmation", f.requestID)) == nil)
        // The batch's one transaction, then "crash": nothing after the commit runs.
        _ = try await f.store.recordInboundBatch(prepared.map(\.write), now: f.clock)
        #expect(try await f.store.request(id: f.requestID)?.status == .answered)
        let confirmation = try #require(try await f.store.mail(messageID: MailingNotices.id("confirmation", f.requestID)))
        #expect(confirmation.kind == .confirmation && confirmation.recipient == "editor@example.org" && confirmation.status == .pending)
        #expect(try await f.store.mail(messageID: MailingNotices.id("clarification", f.requestID))?.kind == .clarification)

        var repair = f.pass(notices: composer)
        repair.staleClaimSeconds = 0
        #expect(try await repair.run().outcomes == ["duplicate": 2])
        // Composed once each, before the commit; the repair pass (duplicates) composes nothing.
        #expect(await composer.composed.sorted() == ["ambiguous:clarification", "confirmation"])
    }

    @Test(arguments: ImportBackend.allCases)
    func theStoreBatchRecordsOneDecisionForTwoAnswersAndSkipsADuplicate(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend, reviewers: ["editor@example.org", "deputy@example.org"])
        defer { Task { await f.close() } }
        let tag = UUID().uuidString
        func answer(_ reviewer: String, _ verdict: Verdict, token: String, key: String) -> InboundWrite {
            InboundWrite(.answer(Answer(requestID: f.requestID, reviewer: reviewer, verdict: verdict, response: Data("{}".utf8),
                                        channel: .mail, via: key, tokenHash: InboundClassifier.tokenHash(token), at: f.clock,
                                        inbound: InboundRecord(dedupeKey: key, sender: reviewer, outcome: .applied, receivedAt: f.clock))))
        }
        let writes = [
            answer("editor@example.org", .approve, token: f.token, key: "mid:a-\(tag)"),
            answer("deputy@example.org", .reject, token: f.token + "1", key: "mid:b-\(tag)"),
            answer("editor@example.org", .approve, token: f.token, key: "mid:a-\(tag)"),     // the first one again
            InboundWrite(.record(InboundRecord(dedupeKey: "mid:c-\(tag)", outcome: .automatic, receivedAt: f.clock))),
        ]
        let results = try await f.store.recordInboundBatch(writes, now: f.clock)
        try #require(results.count == 4)
        guard case .answered(let first) = results[0] else { Issue.record("first: \(results[0])"); return }
        #expect(first.decided)
        guard case .refused(let error) = results[1] else { Issue.record("second: \(results[1])"); return }
        #expect(error.code == .alreadyDecided)
        guard case .duplicate(let seen) = results[2] else { Issue.record("third: \(results[2])"); return }
        #expect(seen == .applied)
        guard case .recorded = results[3] else { Issue.record("fourth: \(results[3])"); return }
        #expect(try await f.store.votes(requestID: f.requestID).map(\.reviewer) == ["editor@example.org"])
        #expect(try await f.store.inboundSeen(dedupeKey: "mid:b-\(tag)") == .alreadyDecided)
        #expect(try await f.store.inboundSeen(dedupeKey: "mid:c-\(tag)") == .automatic)
        // A later batch with the same keys writes nothing new.
        let again = try await f.store.recordInboundBatch(writes, now: f.clock)
        #expect(again.allSatisfy { if case .duplicate = $0 { return true } else { return false } })
    }
}

/// Composes a small real mail per notice (message id `<kind-request@notice.test>`) and records
/// what it composed.
actor MailingNotices: ImportNoticeComposer {
    var composed: [String] = []
    static func id(_ kind: String, _ requestID: String) -> String { "<\(kind)-\(requestID)@notice.test>" }

    func mail(for notice: ImportNotice, now: Date) async throws -> [NewMail] {
        switch notice {
        case .confirmation(let request, _, let reviewer, _, _, _):
            composed.append("confirmation")
            return [NewMail(messageID: Self.id("confirmation", request.id), kind: .confirmation, recipient: reviewer,
                            raw: Data("Subject: confirmed\r\n\r\nok\r\n".utf8), requestID: request.id, runID: request.runID)]
        case .clarification(let request, let reviewer, _, _, _, _):
            composed.append("ambiguous:clarification")
            return [NewMail(messageID: Self.id("clarification", request.id), kind: .clarification, recipient: reviewer,
                            raw: Data("Subject: unclear\r\n\r\nwrite APPROVE\r\n".utf8), requestID: request.id, runID: request.runID)]
        default:
            return []
        }
    }
}
