import Foundation
import Testing
import SignoffMail
import SignoffStore
@testable import SignoffRunner

@Suite(.serialized)
struct OutboxSenderTests {
    static let backends = ["sqlite", "postgres"]
    let start = Date(timeIntervalSince1970: 1_795_000_000)
    let owner = EmailAddress("owner@example.org")
    let composer = MailComposer(templates: .builtin, from: EmailAddress("signoff@example.org", displayName: "Signoff"),
                                replyAddress: EmailAddress("approvals@example.org"))

    /// A paused run with one request whose request mail sits in the outbox; returns its Message-ID.
    func pausedRunWithRequestMail(_ store: any RunStore) async throws -> String {
        let (run, _) = try await store.enqueue(NewRun(job: "weekly-report", requestedBy: owner.address), now: start)
        let claimed = try #require(try await store.claimRuns(owner: "test-runner", limit: 1, leaseSeconds: 60, now: start).first)
        #expect(claimed.run.id == run.id)
        let token = ReplyToken()
        let context = MailTemplateContext(
            job: .init(name: "weekly-report"), run: .init(id: run.id), stepID: "review",
            request: .init(id: "q-1", title: "Publish the weekly report?"), reviewer: EmailAddress("editor@example.org"))
        let mail = try composer.compose(.request, context: context, token: token, date: start)
        let request = NewRequest(id: "q-1", executorID: "review", stepID: "review", requestType: "ApprovalRequest",
                                 requestData: Data(#"{"title":"Publish the weekly report?"}"#.utf8),
                                 responseType: "ApprovalResponse", reviewers: ["editor@example.org"],
                                 tokens: [NewToken(tokenHash: token.sha256Hex, reviewer: "editor@example.org", messageID: mail.messageID)])
        _ = try await store.pause(claimed.lease, checkpoint: NewCheckpoint(superstep: 1, data: Data("{}".utf8)),
                                  requests: [request],
                                  mail: [NewMail(messageID: mail.messageID, kind: .request, recipient: "editor@example.org",
                                                 raw: Data(mail.rfc5322()), requestID: "q-1", runID: run.id)],
                                  delivered: [], now: start)
        return mail.messageID
    }

    func sender(_ store: any RunStore, _ server: OutboxSMTPServer,
                retry: MailRetryPolicy = MailRetryPolicy(baseDelay: .seconds(60), multiplier: 2, maxDelay: .seconds(3600), jitter: 0.5, maxAttempts: 5)) throws -> OutboxSender {
        let transport = try SMTPTransport(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)",
                                                                           connectTimeout: .seconds(3), totalTimeout: .seconds(20)))
        return OutboxSender(store: store, transport: transport,
                            configuration: .init(defaultSender: EmailAddress("signoff@example.org"), retry: retry,
                                                 noticeComposer: composer),
                            random: { 0 })
    }

    @Test(arguments: backends)
    func dueMailIsDeliveredOnceAndASentRowIsNeverSentAgain(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try OutboxSMTPServer()
        defer { server.stop() }
        let messageID = try await pausedRunWithRequestMail(store)
        let sender = try sender(store, server)

        let first = try await sender.sendDue(now: start)
        #expect(first.sent == 1)
        let row = try #require(try await store.mail(messageID: messageID))
        #expect(row.status == .sent)
        #expect(row.sentAt != nil)
        #expect(row.attempts == 1)
        // Much later, even after the hold on the row would have run out: nothing is sent again.
        let later = try await sender.sendDue(now: start.addingTimeInterval(86_400))
        #expect(later == OutboxSender.PassReport())
        #expect(try server.deliveredMessageIDs() == [messageID])
    }

    @Test(arguments: backends)
    func deferral451IsRecordedAndRetriedAfterTheBackoff(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try OutboxSMTPServer(["--defer-first", "1"])
        defer { server.stop() }
        let messageID = try await pausedRunWithRequestMail(store)
        let sender = try sender(store, server)

        let first = try await sender.sendDue(now: start)
        #expect(first.deferred == 1 && first.sent == 0)
        let row = try #require(try await store.mail(messageID: messageID))
        #expect(row.status == .pending)
        #expect(row.attempts == 1)
        #expect(row.lastError?.contains("451") == true)
        #expect(abs(row.nextAttemptAt.timeIntervalSince(start) - 60) < 1, "first backoff is the base delay (jitter 0)")

        #expect(try await sender.sendDue(now: start.addingTimeInterval(30)) == OutboxSender.PassReport(), "not due yet")
        let retry = try await sender.sendDue(now: start.addingTimeInterval(61))
        #expect(retry.sent == 1)
        #expect(try server.deliveredMessageIDs() == [messageID])
        let sent = try #require(try await store.mail(messageID: messageID))
        #expect(sent.status == .sent && sent.attempts == 2)
    }

    @Test(arguments: backends)
    func rejection550MarksTheMailFailedAndTellsTheOwner(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try OutboxSMTPServer(["--reject-all"])
        defer { server.stop() }
        let messageID = try await pausedRunWithRequestMail(store)
        let sender = try sender(store, server)

        let pass = try await sender.sendDue(now: start)
        #expect(pass.failed >= 1 && pass.noticesQueued == 1)
        let row = try #require(try await store.mail(messageID: messageID))
        #expect(row.status == .failed)
        #expect(row.lastError?.contains("550 5.1.1 <editor@example.org>: Recipient address rejected: User unknown") == true)

        // The notice to the owner (queued, sent on the next pass) names the recipient and the server's text.
        let pending = try await store.dueMail(now: start.addingTimeInterval(3600), limit: 10).filter { $0.kind == .failure }
        let notice = try #require(pending.first)
        #expect(pending.count == 1)
        #expect(notice.recipient == owner.address)
        let text = String(decoding: notice.raw, as: UTF8.self)
        #expect(text.contains("editor@example.org"))
        #expect(text.contains("User unknown"))
        #expect(text.contains("Publish the weekly report?"))
        #expect(try server.deliveredMessageIDs().isEmpty)
    }

    @Test(arguments: backends)
    func crashBetween250AndCommitSendsOneDuplicateWithTheSameMessageID(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try OutboxSMTPServer()
        defer { server.stop() }
        let messageID = try await pausedRunWithRequestMail(store)
        let sender = try sender(store, server)

        // A sender takes the row and the server accepts it, then the process dies before markSent.
        let taken = try await store.dueMail(now: start, limit: 10)
        try #require(taken.count == 1)
        _ = try await sender.transport.send(raw: [UInt8](taken[0].raw), from: EmailAddress("signoff@example.org"),
                                            to: [EmailAddress(taken[0].recipient)])

        // While the row is held, other passes leave it alone; once the hold runs out it goes again.
        #expect(try await sender.sendDue(now: start.addingTimeInterval(60)).sent == 0)
        #expect(try await sender.sendDue(now: start.addingTimeInterval(600)).sent == 1)
        #expect(try await sender.sendDue(now: start.addingTimeInterval(86_400)).sent == 0)
        #expect(try server.deliveredMessageIDs() == [messageID, messageID], "one duplicate, same Message-ID")
    }

    @Test(arguments: backends)
    func deadServerIsRetriedUntilTheAttemptLimitThenReported(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try OutboxSMTPServer()
        server.stop()
        let messageID = try await pausedRunWithRequestMail(store)
        let policy = MailRetryPolicy(baseDelay: .seconds(60), multiplier: 2, maxDelay: .seconds(3600), jitter: 0.5, maxAttempts: 2)
        let sender = try sender(store, server, retry: policy)

        #expect(try await sender.sendDue(now: start).deferred == 1)
        let row = try #require(try await store.mail(messageID: messageID))
        #expect(row.status == .pending && row.attempts == 1)
        #expect(row.lastError?.contains("could not deliver") == true)
        let last = try await sender.sendDue(now: start.addingTimeInterval(120))
        #expect(last.failed >= 1 && last.noticesQueued == 1)
        let failed = try #require(try await store.mail(messageID: messageID))
        #expect(failed.status == .failed)
        #expect(failed.lastError?.hasPrefix("gave up after 2 attempts") == true)
    }
}
