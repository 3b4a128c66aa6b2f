import Foundation
import Testing
import SignoffMail
import SignoffStore
import SignoffTestSupport
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

    func sender(_ store: any RunStore, _ server: SMTPServer,
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
        let server = try SMTPServer()
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
        let server = try SMTPServer(["--defer-first", "1"])
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
        let server = try SMTPServer(["--reject-all"])
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
        let server = try SMTPServer()
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
        let server = try SMTPServer()
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

    /// A paused run whose request mail to the editor is in the outbox with reminders scheduled
    /// `reminderOffsets` seconds after `start` (same token, as the runner writes them).
    func pausedRunWithReminders(_ store: any RunStore, reminderOffsets: [TimeInterval]) async throws -> (request: String, reminders: [String], tokenHash: String) {
        let (run, _) = try await store.enqueue(NewRun(job: "weekly-report", requestedBy: owner.address), now: start)
        let claimed = try #require(try await store.claimRuns(owner: "test-runner", limit: 1, leaseSeconds: 60, now: start).first)
        let token = ReplyToken()
        let context = MailTemplateContext(
            job: .init(name: "weekly-report"), run: .init(id: run.id), stepID: "review",
            request: .init(id: "q-1", title: "Publish the weekly report?"), reviewer: EmailAddress("editor@example.org"))
        let request = try composer.compose(.request, context: context, token: token, date: start)
        var mail = [NewMail(messageID: request.messageID, kind: .request, recipient: "editor@example.org",
                            raw: Data(request.rfc5322()), requestID: "q-1", runID: run.id)]
        for (i, offset) in reminderOffsets.enumerated() {
            let at = start.addingTimeInterval(offset)
            let id = ReminderMessageID.make(tokenHash: token.sha256Hex, round: i + 1, requestMessageID: request.messageID)
            let reminder = try composer.compose(.reminder, context: context, token: token, inReplyTo: request.messageID,
                                                date: at, messageID: id)
            mail.append(NewMail(messageID: reminder.messageID, kind: .reminder, recipient: "editor@example.org",
                                raw: Data(reminder.rfc5322()), requestID: "q-1", runID: run.id, notBefore: at))
        }
        let newRequest = NewRequest(id: "q-1", executorID: "review", stepID: "review", requestType: "ApprovalRequest",
                                    requestData: Data(#"{"title":"Publish the weekly report?"}"#.utf8),
                                    responseType: "ApprovalResponse", reviewers: ["editor@example.org"],
                                    tokens: [NewToken(tokenHash: token.sha256Hex, reviewer: "editor@example.org", messageID: request.messageID)])
        _ = try await store.pause(claimed.lease, checkpoint: NewCheckpoint(superstep: 1, data: Data("{}".utf8)),
                                  requests: [newRequest], mail: mail, delivered: [], now: start)
        return (request.messageID, mail.dropFirst().map(\.messageID), token.sha256Hex)
    }

    @Test(arguments: backends)
    func aReminderNoLongerNeededEndsWithdrawnIsNeverSentAndIsNotAFailure(backend: String) async throws {
        let store = try await OutboxTestEnvironment.freshStore(backend)
        defer { Task { await store.close() } }
        let server = try SMTPServer()
        defer { server.stop() }
        let (request, reminders, tokenHash) = try await pausedRunWithReminders(store, reminderOffsets: [3600, 7200, 10_800])
        let sender = try sender(store, server)

        #expect(try await sender.sendDue(now: start).sent == 1, "the request mail")
        // Nothing ran for two hours: rounds 1 and 2 are due together; round 1 is superseded by round 2.
        let missed = try await sender.sendDue(now: start.addingTimeInterval(7201))
        #expect(missed.sent == 1 && missed.withdrawn == 1 && missed.failed == 0, "\(missed)")
        let superseded = try #require(try await store.mail(messageID: reminders[0]))
        #expect(superseded.status == .withdrawn)
        #expect(superseded.lastError == "superseded by a later reminder due at the same time")
        #expect(superseded.attempts == 0 && superseded.sentAt == nil)
        #expect(try await store.mail(messageID: reminders[1])?.status == .sent)

        // The editor answers; round 3 falls due afterwards and is withdrawn, not sent and not failed.
        _ = try await store.answer(Answer(requestID: "q-1", reviewer: "editor@example.org", verdict: .approve,
                                          response: Data("true".utf8), channel: .mail, via: "<reply@example.org>",
                                          tokenHash: tokenHash, at: start.addingTimeInterval(8000)))
        let afterAnswer = try await sender.sendDue(now: start.addingTimeInterval(10_801))
        #expect(afterAnswer == { var r = OutboxSender.PassReport(); r.withdrawn = 1; return r }(),
                "withdrawn only: nothing sent, failed or told to the owner: \(afterAnswer)")
        let withdrawn = try #require(try await store.mail(messageID: reminders[2]))
        #expect(withdrawn.status == .withdrawn)
        #expect(withdrawn.lastError == "the request is answered")
        #expect(withdrawn.attempts == 0 && withdrawn.sentAt == nil)
        // It stays settled: never due again, never sent.
        #expect(try await sender.sendDue(now: start.addingTimeInterval(86_400)) == OutboxSender.PassReport())
        #expect(try await store.dueMail(now: start.addingTimeInterval(86_400), limit: 10).isEmpty)
        #expect(try server.deliveredMessageIDs().sorted() == [request, reminders[1]].sorted())
        #expect(try await store.mail(messageID: request)?.status == .sent)
    }
}
