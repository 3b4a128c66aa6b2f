import Foundation
import Logging
import SignoffMail
@testable import SignoffRunner
import SignoffStore
import Testing
import SignoffTestSupport

enum ImportBackend: String, CaseIterable, Sendable { case sqlite, postgres }

/// Reads approval requests (`responseType` "approval") and number requests ("number").
struct ImportTestInterpreter: ImportRequestInterpreter {
    func expectedResponse(for request: RequestRecord) -> ExpectedResponse? {
        request.responseType == "number" ? .value(.number) : .approval(rejectReasonRequired: true)
    }
    func response(for decision: Decision, request: RequestRecord, by reviewer: String, via: String?) -> Data? {
        switch decision {
        case .approve(let c): return Data(#"{"approved": true, "comment": \#(c.map { "\"\($0)\"" } ?? "null")}"#.utf8)
        case .reject: return Data(#"{"approved": false}"#.utf8)
        case .value(let v): return Data(v.jsonFragment.utf8)
        case .delegate: return nil
        }
    }
}

/// Records every notice it composes, and renders each as a small mail whose body is that
/// record (so the outbox shows which notices were queued).
actor ImportNoticeLog: ImportNoticeComposer {
    var notices: [String] = []
    func mail(for notice: ImportNotice, now: Date) async throws -> [NewMail] {
        let line: String
        var requestID: String?
        switch notice {
        case .confirmation(let r, let d, let to, _, _, _): line = "confirmation:\(d.kind):\(to)"; requestID = r.id
        case .clarification(let r, let to, _, _, _, _): line = "clarification:\(to)"; requestID = r.id
        case .alreadyDecided(let r, let to, _, _): line = "already_decided:\(to)"; requestID = r.id
        case .bounced(let m, _): line = "bounced:\(m.messageID)"; requestID = m.requestID
        case .decided(let r, _, let except): line = "decided:except:\(except ?? "-")"; requestID = r.id
        }
        notices.append(line)
        return [NewMail(messageID: "<notice-\(UUID().uuidString)@log.test>", kind: .confirmation, recipient: "log@example.org",
                        raw: Data(line.utf8), requestID: requestID)]
    }

    /// The notices queued in `store`'s outbox (what reviewers would get), sorted.
    static func queued(_ store: any RunStore) async throws -> [String] {
        try await store.dueMail(now: Date(timeIntervalSince1970: 4_000_000_000), limit: 1000)
            .filter { $0.recipient == "log@example.org" }.map { String(decoding: $0.raw, as: UTF8.self) }.sorted()
    }
}

/// A store with one waiting run and one pending request for editor@example.org, a Maildir and
/// an inbox in a temporary directory.
struct ImportFixture {
    let store: any RunStore
    let dir: URL
    let maildir: Maildir
    let inbox: Maildir
    let token = "tok" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
    let requestID: String
    let runID: String
    let requestMessageID: String
    let clock = Date(timeIntervalSince1970: 1_900_000_000)

    static func make(_ backend: ImportBackend, responseType: String = "approval", reviewers: [String] = ["editor@example.org"]) async throws -> ImportFixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url: String
        switch backend {
        case .sqlite: url = "sqlite:" + dir.appendingPathComponent("signoff.db").path
        case .postgres:
            guard let pg = ProcessInfo.processInfo.environment["SIGNOFF_TEST_POSTGRES"], !pg.isEmpty else {
                throw ImportTestError("SIGNOFF_TEST_POSTGRES is not set: the PostgreSQL import tests need a real server; run scripts/test")
            }
            url = try createImportTestDatabase(admin: pg)
        }
        let store = try await openStore(url: url)
        return try await make(store: store, dir: dir, responseType: responseType, reviewers: reviewers)
    }

    static func make(store: any RunStore, dir: URL, responseType: String, reviewers: [String]) async throws -> ImportFixture {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let (run, _) = try await store.enqueue(NewRun(job: "import-test", uniqueKey: UUID().uuidString), now: now)
        let claimed = try await store.claimRuns(owner: "test", limit: 50, leaseSeconds: 60, now: now)
        let lease = try #require(claimed.first { $0.run.id == run.id }).lease
        let fixture = ImportFixture(store: store, dir: dir, maildir: Maildir(root: dir.appendingPathComponent("Maildir")),
                                    inbox: Maildir(root: dir.appendingPathComponent("inbox")), requestID: "req-" + UUID().uuidString,
                                    runID: run.id, requestMessageID: "req-\(UUID().uuidString)@signoff.test")
        let tokens = reviewers.enumerated().map { i, r in
            NewToken(tokenHash: InboundClassifier.tokenHash(i == 0 ? fixture.token : fixture.token + "\(i)"), reviewer: r,
                     expiresAt: now.addingTimeInterval(86_400), messageID: "<\(fixture.requestMessageID)>")
        }
        let request = NewRequest(id: fixture.requestID, executorID: "review", requestType: "ApprovalRequest", requestData: Data("{}".utf8),
                                 responseType: responseType, reviewers: reviewers, tokens: tokens)
        let mail = NewMail(messageID: "<\(fixture.requestMessageID)>", kind: .request, recipient: reviewers[0], raw: Data("x".utf8),
                           requestID: fixture.requestID, runID: run.id)
        _ = try await store.pause(lease, checkpoint: nil, requests: [request], mail: [mail], delivered: [], now: now)
        try fixture.maildir.create()
        try fixture.inbox.create()
        return fixture
    }

    func pass(notices: any ImportNoticeComposer = SilentNoticeComposer(), at: Date? = nil) -> ImportPass {
        let t = at ?? clock
        return ImportPass(store: store, maildir: maildir, inbox: inbox,
                          config: InboundConfig(replyAddress: EmailAddress("approvals@signoff.test"), strictAuthservID: "mx.signoff.test"),
                          interpreter: ImportTestInterpreter(), notices: notices, logger: Self.quiet, now: { t })
    }

    /// Warnings and errors only: a pass logs one line per imported message at info, thousands in the race test.
    static var quiet: Logger {
        var logger = Logger(label: "signoff.import")
        logger.logLevel = .warning
        return logger
    }

    func reply(_ body: String, from: String = "Editor <editor@example.org>", token: String? = nil, messageID: String = "<\(UUID().uuidString)@client.example>",
               extra: [String] = []) -> [UInt8] {
        let t = token ?? self.token
        let headers = [
            "Return-Path: <editor@example.org>",
            "Delivered-To: approvals+\(t)@signoff.test",
            "Authentication-Results: mx.signoff.test; spf=pass; dkim=pass header.d=example.org; dmarc=pass header.from=example.org",
        ] + extra + [
            "From: \(from)", "To: approvals+\(t)@signoff.test", "Subject: Re: [signoff] Publish?", "Message-ID: \(messageID)",
            "In-Reply-To: <\(requestMessageID)>", "Content-Type: text/plain; charset=utf-8",
        ]
        return Array((headers.joined(separator: "\r\n") + "\r\n\r\n" + body.replacingOccurrences(of: "\n", with: "\r\n")).utf8)
    }

    func files(_ sub: String, in m: Maildir? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: (m ?? maildir).root.appendingPathComponent(sub).path)) ?? []).sorted()
    }

    func close() async {
        await store.close()
        try? FileManager.default.removeItem(at: dir)
    }
}

/// A fresh PostgreSQL database on the test cluster (created with psql), so runs left by other
/// tests or benchmarks are never claimed here. Returns its URL.
func createImportTestDatabase(admin: String) throws -> String {
    let name = "signoff_import_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    let bins = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
        .map { "/usr/lib/postgresql/\($0)/bin/psql" } + ["/usr/bin/psql"]
    guard let psql = bins.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw ImportTestError("psql not found: install postgresql-client (scripts/test needs the PostgreSQL binaries)")
    }
    let created = try Subprocess.run(psql, [admin, "-q", "-c", "CREATE DATABASE \(name)"])
    guard created.status == 0 else { throw ImportTestError("psql could not create database \(name): \(created.stderr)") }
    let parts = admin.split(separator: "?", maxSplits: 1).map(String.init)
    let schemeEnd = parts[0].range(of: "://")!.upperBound
    let base = parts[0][schemeEnd...].firstIndex(of: "/").map { String(parts[0][..<$0]) } ?? parts[0]
    return base + "/" + name + (parts.count > 1 ? "?" + parts[1] : "")
}

struct ImportTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

@Suite(.serialized)
struct ImportPassTests {
    @Test(arguments: ImportBackend.allCases)
    func anAuthenticApprovalAnswersTheRequestAndIsArchived(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let log = ImportNoticeLog()
        try f.maildir.deliver(f.reply("APPROVE: ship it\n\nOn Mon, Signoff <approvals@signoff.test> wrote:\n> APPROVE or REJECT: reason"))
        let summary = try await f.pass(notices: log).run()
        #expect(summary.outcomes == ["applied": 1])
        let request = try #require(try await f.store.request(id: f.requestID))
        #expect(request.status == .answered)
        #expect(try await f.store.run(id: f.runID)?.status == .queued)
        #expect(f.files("archive").count == 1 && f.files("new").isEmpty && f.files("cur").isEmpty)
        #expect(await log.notices == ["confirmation:approve:editor@example.org"])
    }

    @Test(arguments: ImportBackend.allCases)
    func forgedSenderAndForeignAuthservAreQuarantinedAndDecideNothing(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        try f.maildir.deliver(f.reply("APPROVE", from: "Mallory <mallory@evil.example>"))
        var forged = String(decoding: f.reply("APPROVE"), as: UTF8.self)
        forged = forged.replacingOccurrences(of: "Authentication-Results: mx.signoff.test;", with: "Authentication-Results: mx.evil.example;")
        try f.maildir.deliver(Array(forged.utf8))
        let summary = try await f.pass().run()
        #expect(summary.outcomes == ["sender_mismatch": 1, "auth_failed": 1])
        #expect(try await f.store.request(id: f.requestID)?.status == .pending)
        let q = f.files("quarantine")
        #expect(q.count == 4)
        let reasons = try q.filter { $0.hasSuffix(".reason") }.map { try String(contentsOf: f.maildir.quarantineDirectory.appendingPathComponent($0), encoding: .utf8) }
        #expect(reasons.contains { $0.hasPrefix("sender_mismatch:") } && reasons.contains { $0.hasPrefix("auth_failed:") })
    }

    @Test(arguments: ImportBackend.allCases)
    func theSameMessageDeliveredTwiceDecidesOnce(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let message = f.reply("REJECT: totals are wrong\nsee row 3", messageID: "<dup-\(UUID().uuidString)@client.example>")
        try f.maildir.deliver(message)
        try f.maildir.deliver(message)
        let summary = try await f.pass().run()
        #expect(summary.outcomes == ["applied": 1, "duplicate": 1])
        let votes = try await f.store.votes(requestID: f.requestID)
        #expect(votes.count == 1)
        #expect(votes.first?.reason == "totals are wrong\nsee row 3")
        #expect(f.files("archive").count == 2)
    }

    @Test(arguments: ImportBackend.allCases)
    func automaticMailAmbiguousRepliesAndLateRepliesChangeNothing(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let log = ImportNoticeLog()
        try f.maildir.deliver(f.reply("APPROVE\n\nI am out of the office.", extra: ["Auto-Submitted: auto-replied"]))
        try f.maildir.deliver(f.reply("yes, looks fine"))
        var summary = try await f.pass(notices: log).run()
        #expect(summary.outcomes == ["automatic": 1, "ambiguous": 1])
        #expect(try await f.store.request(id: f.requestID)?.status == .pending)
        #expect(await log.notices == ["clarification:editor@example.org"])
        try f.maildir.deliver(f.reply("APPROVE"))
        _ = try await f.pass(notices: log).run()
        try f.maildir.deliver(f.reply("REJECT: changed my mind"))
        summary = try await f.pass(notices: log).run()
        #expect(summary.outcomes == ["already_decided": 1])
        #expect(await log.notices.last == "already_decided:editor@example.org")
        #expect(try await f.store.request(id: f.requestID)?.decision == "approve")
    }

    @Test(arguments: ImportBackend.allCases)
    func aBounceMarksTheRequestMailFailed(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let log = ImportNoticeLog()
        let bounce = """
        Return-Path: <>
        Delivered-To: approvals@signoff.test
        From: Mail Delivery System <MAILER-DAEMON@mx.signoff.test>
        To: approvals@signoff.test
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <bounce-\(UUID().uuidString)@mx.signoff.test>
        Content-Type: multipart/report; report-type=delivery-status; boundary="b"

        --b
        Content-Type: text/plain

        The mail could not be delivered.
        --b
        Content-Type: message/delivery-status

        Final-Recipient: rfc822; editor@example.org
        Action: failed
        Status: 5.1.1
        --b
        Content-Type: text/rfc822-headers

        Message-ID: <\(f.requestMessageID)>
        Subject: Publish?
        --b--
        """
        try f.maildir.deliver(Array(bounce.utf8))
        let summary = try await f.pass(notices: log).run()
        #expect(summary.outcomes == ["bounce": 1])
        let sent = try #require(try await f.store.mail(messageID: "<\(f.requestMessageID)>"))
        #expect(sent.status == .failed)
        #expect(sent.lastError?.contains("bounce") == true)
        #expect(await log.notices == ["bounced:<\(f.requestMessageID)>"])
    }

    @Test(arguments: ImportBackend.allCases)
    func anExpiredTokenAndAResponseFileFollowTheSameRules(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        try f.maildir.deliver(f.reply("APPROVE"))
        let late = try await f.pass(at: f.clock.addingTimeInterval(2 * 86_400)).run()
        #expect(late.outcomes == ["expired": 1])
        let json = #"{"request": "\#(f.requestID)", "token": "\#(f.token)", "decision": "reject", "reason": "no budget", "responder": "editor@example.org"}"#
        try Data(json.utf8).write(to: f.inbox.root.appendingPathComponent("tmp/a.json"))
        try FileManager.default.moveItem(at: f.inbox.root.appendingPathComponent("tmp/a.json"), to: f.inbox.newDirectory.appendingPathComponent("a.json"))
        let summary = try await f.pass().run()
        #expect(summary.outcomes == ["applied": 1])
        #expect(try await f.store.request(id: f.requestID)?.decision == "reject")
        #expect(f.files("archive", in: f.inbox) == ["a.json"])
    }

    @Test(arguments: ImportBackend.allCases)
    func aCrashBeforeTheMoveIsRepairedByTheNextPass(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let name = try f.maildir.deliver(f.reply("APPROVE"))
        // Simulate a crash after the commit: process the message, then put it back in cur/.
        let claimed = try #require(try f.maildir.claim(name))
        _ = try await f.pass().process(claimed, in: f.maildir, isMail: true)
        try FileManager.default.moveItem(at: f.maildir.archiveDirectory.appendingPathComponent(claimed.name), to: claimed.path)
        #expect(try await f.pass().run().processed == 0)   // a fresh claim is not stale yet
        var repair = f.pass()
        repair.staleClaimSeconds = 0
        let repaired = try await repair.run()
        #expect(repaired.outcomes == ["duplicate": 1])
        #expect(f.files("archive") == [claimed.name] && f.files("cur").isEmpty)
        #expect(try await f.store.votes(requestID: f.requestID).count == 1)
    }

    @Test(arguments: ImportBackend.allCases)
    func twoImportersRacingOverTwoThousandMessagesProcessEachExactlyOnce(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let n = 2000
        for i in 0..<n { try f.maildir.deliver(f.reply(i == 0 ? "APPROVE" : "thanks \(i)", messageID: "<race-\(i)-\(UUID().uuidString)@c>")) }
        async let a = f.pass().run()
        async let b = f.pass().run()
        let (x, y) = try await (a, b)
        #expect(x.processed + y.processed == n)
        #expect(x.lostRaces + y.lostRaces + x.processed + y.processed >= n)
        #expect(x.errors + y.errors == 0)
        #expect(f.files("archive").count == n)
        let applied = (x.outcomes["applied"] ?? 0) + (y.outcomes["applied"] ?? 0)
        #expect(applied == 1)
    }
}
