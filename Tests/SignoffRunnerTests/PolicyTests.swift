import Foundation
import Synchronization
import Testing
@testable import SignoffRunner
import SignoffMail
import SignoffStore

/// Request policies end to end through real mail: request and reminder mail over SMTP into the
/// reviewers' Maildir, replies over SMTP into the maildrop, `signoff import` as its own process,
/// runner passes with an injected clock. Every test runs on SQLite and PostgreSQL.
@Suite(.serialized)
struct PolicyTests {
    /// A job with one approval step carrying `policy` (YAML lines under `approval:`) and a step after it.
    static func job(reviewers: [String], _ policy: [String] = []) -> String {
        (["name: gate", "steps:", "  - id: sign", "    approval:",
          "      reviewers: [\(reviewers.joined(separator: ", "))]", "      subject: \"Ship it?\""]
         + policy.map { "      " + $0 }
         + ["  - id: after", "    shell: [\"echo\", \"went on\"]"]).joined(separator: "\n") + "\n"
    }

    static let a = "a@example.org", b = "b@example.org", c = "c@example.org"

    func events(_ p: PolicyLoop, _ runID: String) async throws -> [EventRecord] { try await p.store.events(runID: runID) }

    // MARK: Reminders

    @Test(arguments: Backend.allCases)
    func remindersCarryTheRequestTokenInItsThreadOnScheduleNeverTwiceAndOnlyToWhoHasNotAnswered(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a, Self.b], [
            "quorum: all", "expires_after: 2h", "remind_every: 30m", "reminders: 3", "on_timeout: reject"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        var report = try await p.tick()
        #expect(report.waiting == 1 && report.mailSent == 2, "\(report)")
        report = try await p.tick()
        #expect(report.mailSent == 0 && report.timersFired == 0, "nothing is due yet: \(report)")

        p.clock.advance(31 * 60)
        report = try await p.tick()
        #expect(report.timersFired == 1 && report.mailSent == 2, "first round: \(report)")
        let requestToA = try #require(p.requests(to: Self.a).first)
        let reminderToA = try #require(p.received(Self.a).first { $0.isReminder })
        #expect(reminderToA.token == requestToA.token, "the reminder carries the request's own token")
        #expect(reminderToA.header("In-Reply-To") == requestToA.messageID, "the reminder is in the request's thread")
        report = try await p.tick()
        #expect(report.timersFired == 0 && report.mailSent == 0, "a reminder went out twice: \(report)")

        // a answers by replying to the reminder (same token; a client that sends In-Reply-To only);
        // the vote counts, the request stays open.
        try p.reply(to: reminderToA, from: Self.a, "APPROVE: fine by me", inReplyToOnly: true)
        #expect(p.importReplies() == ["applied": 1])
        #expect(try await p.request(of: run).status == .pending)
        try await p.tick()  // a's confirmation
        let pending = try #require(p.product.json("pending") as? [[String: Any]])
        #expect(pending.first?["remindersSent"] as? Int == 1)
        #expect(pending.first?["dueAt"] != nil)
        let votes = try #require(pending.first?["votes"] as? [[String: Any]])
        #expect(votes.map { $0["reviewer"] as? String } == [Self.a])
        #expect(p.product.ok("pending").contains("a@example.org=approve"))

        p.clock.advance(30 * 60)
        try await p.tick()
        #expect(p.received(Self.b).filter(\.isReminder).count == 2, "b has not answered: second reminder")
        #expect(p.received(Self.a).filter(\.isReminder).count == 1, "a answered: no second reminder: \(p.received(Self.a).map(\.subject))")

        try p.reply(to: try #require(p.requests(to: Self.b).first), from: Self.b, "APPROVE")
        #expect(p.importReplies() == ["applied": 1])
        report = try await p.tick()
        #expect(report.succeeded == 1)
        p.clock.advance(30 * 60)
        report = try await p.tick()
        #expect(report.mailSent == 0, "no reminder after the decision: \(report)")
        #expect(p.received().filter(\.isReminder).count == 3)
        #expect(try p.sql("SELECT count(*) FROM outbox WHERE kind = 'reminder' AND status = 'withdrawn'") == "3",
                "the three reminders nobody needed are withdrawn, not sent")
        #expect(try p.sql("SELECT count(*) FROM outbox WHERE status = 'failed'") == "0",
                "a withdrawn reminder is not a failed delivery")
    }

    @Test(arguments: Backend.allCases)
    func remindersMissedWhileNothingRanComeOnceAsTheLatestRound(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a], [
            "expires_after: 2h", "remind_every: 10m", "reminders: 3"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()
        p.clock.advance(35 * 60)  // three rounds fell due while no runner ran
        let report = try await p.tick()
        #expect(report.mailSent == 1, "one reminder, not three: \(report)")
        let reminders = p.received(Self.a).filter(\.isReminder)
        #expect(reminders.count == 1 && reminders.first?.flat.contains("Reminder 3:") == true)
        #expect(try await p.request(of: run).remindersSent == 3)
        #expect(try await p.request(of: run).remindAt == nil, "no round left")
        #expect(try await p.tick().mailSent == 0)
    }

    // MARK: Expiry

    @Test(arguments: Backend.allCases, ["reject", "approve", "fail"])
    func eachTimeoutActionIsRecordedAsSystemTimeoutAndTheOthersAreTold(_ backend: Backend, _ action: String) async throws {
        // The clock starts three hours ago, so the request is overdue in real time before the runner's clock gets there.
        let clock = MovableClock(offset: -3 * 3600)
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a, Self.b], [
            "expires_after: 1h", "on_timeout: \(action)"]), clock: clock)
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()

        let pending = try #require(p.product.json("pending") as? [[String: Any]])
        #expect(pending.first?["overdue"] as? Bool == true)
        #expect(p.product.ok("pending").contains("(overdue)"))
        let metricsFile = p.product.dir + "/metrics.prom"
        p.product.ok("metrics", "--textfile", metricsFile)
        var metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
        #expect(metrics.contains("signoff_pending_requests 1") && metrics.contains("signoff_overdue_requests 1"), "\(metrics)")
        let age = metrics.split(separator: "\n").first { $0.hasPrefix("signoff_oldest_pending_request_age_seconds ") }
            .flatMap { Double($0.split(separator: " ")[1]) } ?? 0
        #expect(age > 2.9 * 3600, "age of the oldest request: \(age)")

        clock.advance(61 * 60)
        let report = try await p.tick()
        #expect(report.timersFired == 1)
        let request = try await p.request(of: run)
        #expect(request.answeredBy == "system:timeout")
        let expected: [String: RunStatus] = ["reject": .rejected, "approve": .succeeded, "fail": .failed]
        #expect(try await p.store.run(id: run)?.status == expected[action])
        let answered = try await events(p, run).filter { $0.kind == "answered" }
        #expect(answered.count == 1 && answered.first?.actor == "system:timeout")
        for reviewer in [Self.a, Self.b] {
            #expect(p.received(reviewer).contains { $0.subject.contains("Decided: Ship it?") }, "\(reviewer) is told it was decided")
        }
        // A late reply changes nothing.
        try p.reply(to: try #require(p.requests(to: Self.a).first), from: Self.a, "APPROVE")
        #expect(p.importReplies() == ["already_decided": 1])
        p.product.ok("metrics", "--textfile", metricsFile)
        metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
        #expect(metrics.contains("signoff_pending_requests 0"))
        #expect(metrics.contains("signoff_decisions{decision=\"\(action == "approve" ? "approve" : "reject")\"} 1"), "\(metrics)")
    }

    @Test(arguments: Backend.allCases)
    func escalationMailsNewTokensOldTokensStopWorkingAndASecondExpiryRejects(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a], [
            "expires_after: 1h", "on_timeout: escalate", "escalate_to: [head@example.org]"]))
        defer { Task { await p.close() } }
        let first = try await p.enqueue("gate")
        let second = try await p.enqueue("gate")
        try await p.tick()
        p.clock.advance(61 * 60)
        let report = try await p.tick()
        #expect(report.timersFired == 2)
        let escalated = p.requests(to: "head@example.org")
        #expect(escalated.count == 2 && escalated.allSatisfy { $0.subject.contains("Escalated: Ship it?") })
        let request = try await p.request(of: first)
        #expect(request.status == .pending && request.reviewers == ["head@example.org"])
        let tokens = try await p.store.tokens(requestID: request.id)
        #expect(tokens.filter { $0.state == .active }.map(\.reviewer) == ["head@example.org"])
        #expect(try await events(p, first).contains { $0.kind == "escalated" && $0.actor == "system:timeout" })

        // The old token no longer decides anything.
        let aMails = p.requests(to: Self.a)
        #expect(aMails.count == 2)
        for mail in aMails { try p.reply(to: mail, from: Self.a, "APPROVE") }
        #expect(p.importReplies() == ["expired": 2])
        #expect(try await p.store.run(id: first)?.status == .waiting)

        // The head answers the first run; nobody answers the second, which then expires for good.
        let headMailFirst = try #require(escalated.first { $0.token.map { t in tokens.contains { $0.tokenHash == ReplyToken.sha256Hex(of: t) } } == true })
        try p.reply(to: headMailFirst, from: "head@example.org", "APPROVE")
        #expect(p.importReplies() == ["applied": 1])
        try await p.tick()
        #expect(try await p.store.run(id: first)?.status == .succeeded)
        p.clock.advance(25 * 3600)
        try await p.tick()
        #expect(try await p.store.run(id: second)?.status == .rejected)
        #expect(try await p.request(of: second).answeredBy == "system:timeout")
    }

    // MARK: Quorum

    @Test(arguments: Backend.allCases)
    func twoOfThreeQuorumDecidesOnceEvenWhenTheLastRepliesRace(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a, Self.b, Self.c], ["quorum: 2"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()
        try p.reply(to: try #require(p.requests(to: Self.a).first), from: Self.a, "APPROVE")
        #expect(p.importReplies() == ["applied": 1])
        var request = try await p.request(of: run)
        #expect(request.status == .pending)
        #expect(try await p.store.votes(requestID: request.id).count == 1, "each answer is recorded")

        // b and c answer at once; two importers race for them.
        try p.reply(to: try #require(p.requests(to: Self.b).first), from: Self.b, "APPROVE")
        try p.reply(to: try #require(p.requests(to: Self.c).first), from: Self.c, "APPROVE")
        let outcomes = Mutex<[String: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let r = p.importReplies()
            outcomes.withLock { all in for (k, v) in r { all[k, default: 0] += v } }
        }
        #expect(outcomes.withLock { $0 } == ["applied": 1, "already_decided": 1])
        request = try await p.request(of: run)
        #expect(request.status == .answered && request.decision == "approve")
        let votes = try await p.store.votes(requestID: request.id)
        #expect(votes.count == 2)
        #expect(try await events(p, run).filter { $0.kind == "answered" }.count == 1, "one decision")
        let tokens = try await p.store.tokens(requestID: request.id)
        #expect(tokens.allSatisfy { $0.state != .active }, "no token works after the decision")
        try await p.tick()
        #expect(try await p.store.run(id: run)?.status == .succeeded)
        let loser = try #require([Self.b, Self.c].first { r in !votes.contains { $0.reviewer == r } })
        #expect(p.received(loser).contains { $0.subject.contains("Decided: Ship it?") }, "the reviewer left out is told: \(p.received().map(\.description))")
    }

    @Test(arguments: Backend.allCases)
    func rejectOnQuorumNeedsAsManyRejectionsAsApprovals(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a, Self.b, Self.c], ["quorum: 2", "reject_on: quorum"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()
        try p.reply(to: try #require(p.requests(to: Self.a).first), from: Self.a, "REJECT: not yet")
        #expect(p.importReplies() == ["applied": 1])
        #expect(try await p.request(of: run).status == .pending, "under reject_on: quorum one rejection does not decide")
        try p.reply(to: try #require(p.requests(to: Self.b).first), from: Self.b, "APPROVE")
        _ = p.importReplies()
        #expect(try await p.request(of: run).status == .pending)
        try p.reply(to: try #require(p.requests(to: Self.c).first), from: Self.c, "REJECT: agree with a")
        _ = p.importReplies()
        let request = try await p.request(of: run)
        #expect(request.status == .answered && request.decision == "reject")
        try await p.tick()
        #expect(try await p.store.run(id: run)?.status == .rejected)
    }

    // MARK: Delegation

    @Test(arguments: Backend.allCases)
    func delegationToAListedDeputyHandsTheTokenOverAndAnUnlistedOneIsRefused(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a], [
            "delegates: [deputy@example.org]", "remind_every: 1h", "reminders: 2"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()
        let toA = try #require(p.requests(to: Self.a).first)

        try p.reply(to: toA, from: Self.a, "DELEGATE: stranger@example.org")
        #expect(p.importReplies() == ["invalid_value": 1])
        try await p.tick()
        let refusal = try #require(p.received(Self.a).last)
        #expect(refusal.flat.contains("DELEGATE to stranger@example.org is not allowed"), "a is told why: \(refusal.text)")
        #expect(p.received("stranger@example.org").isEmpty)
        #expect(try p.sql("SELECT reason FROM inbound WHERE outcome = 'invalid_value'").contains("deputy@example.org (`delegates:`)"))

        try p.reply(to: toA, from: Self.a, "DELEGATE: deputy@example.org")
        #expect(p.importReplies() == ["applied": 1])
        try await p.tick()
        let toDeputy = try #require(p.requests(to: "deputy@example.org").first, "\(p.received().map(\.description))")
        #expect(toDeputy.subject.contains("Delegated to you: Ship it?"))
        #expect(toDeputy.flat.contains("a@example.org handed this request to you"))
        #expect(p.received(Self.a).contains { $0.flat.contains("delegated to deputy@example.org") }, "a gets a confirmation")
        let request = try await p.request(of: run)
        #expect(request.reviewers == ["deputy@example.org"])
        let delegated = try #require(try await events(p, run).first { $0.kind == "delegated" })
        #expect(delegated.actor == Self.a && delegated.data.contains("token_prefix"))

        // a's token stopped working; the deputy's decides. The deputy also gets the remaining reminders.
        try p.reply(to: toA, from: Self.a, "APPROVE")
        #expect(p.importReplies() == ["expired": 1])
        p.clock.advance(61 * 60)
        try await p.tick()
        let reminder = try #require(p.received("deputy@example.org").first { $0.isReminder })
        #expect(reminder.token == toDeputy.token)
        #expect(!p.received(Self.a).contains { $0.isReminder }, "no reminder to the delegator")
        try p.reply(to: toDeputy, from: "deputy@example.org", "APPROVE: done")
        #expect(p.importReplies() == ["applied": 1])
        try await p.tick()
        #expect(try await p.store.run(id: run)?.status == .succeeded)
        #expect(try await p.store.votes(requestID: request.id).map(\.reviewer) == ["deputy@example.org"])
    }

    // MARK: Separation of duties

    @Test(arguments: Backend.allCases)
    func selfApprovalIsRefusedRecordedWithTheReasonAndTheReviewerIsTold(_ backend: Backend) async throws {
        let alice = "alice@example.org", bob = "bob@example.org"
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [alice, bob], ["forbid: [requester]"]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate", requestedBy: alice)
        try await p.tick()
        try p.reply(to: try #require(p.requests(to: alice).first), from: alice, "APPROVE")
        #expect(p.importReplies() == ["invalid_value": 1])
        #expect(try await p.store.run(id: run)?.status == .waiting)
        #expect(try await p.store.votes(requestID: try await p.request(of: run).id).isEmpty)
        let reason = try p.sql("SELECT reason FROM inbound WHERE outcome = 'invalid_value'")
        #expect(reason.contains("alice@example.org enqueued the run") && reason.contains("separation of duties"), "recorded reason: \(reason)")
        try await p.tick()
        let told = try #require(p.received(alice).last)
        #expect(told.flat.contains("separation of duties"), "alice is told why: \(told.text)")

        try p.reply(to: try #require(p.requests(to: bob).first), from: bob, "APPROVE")
        #expect(p.importReplies() == ["applied": 1])
        try await p.tick()
        #expect(try await p.store.run(id: run)?.status == .succeeded)
    }

    // MARK: Audit

    @Test(arguments: Backend.allCases)
    func auditChainVerifiesThenAnEditInSQLIsDetectedAtTheEditedEvent(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a]))
        defer { Task { await p.close() } }
        let run = try await p.enqueue("gate")
        try await p.tick()
        let mail = try #require(p.requests(to: Self.a).first)
        try p.reply(to: mail, from: Self.a, "APPROVE: ok")
        #expect(p.importReplies() == ["applied": 1])
        try await p.tick()
        #expect(try await p.store.run(id: run)?.status == .succeeded)
        #expect(p.product.ok("audit", "verify", run).contains("chain intact"))

        // The vote records who, when, through which message, and the token's hash prefix.
        let vote = try #require(try await events(p, run).first { $0.kind == "vote" })
        let data = try #require(try JSONSerialization.jsonObject(with: Data(vote.data.utf8)) as? [String: String])
        #expect(vote.actor == Self.a)
        #expect(data["token_prefix"] == String(ReplyToken.sha256Hex(of: try #require(mail.token)).prefix(12)))
        #expect(data["via"]?.hasPrefix("reply-") == true && data["channel"] == "mail")
        let answered = try #require(try await events(p, run).first { $0.kind == "answered" })
        let decided = try #require(try JSONSerialization.jsonObject(with: Data(answered.data.utf8)) as? [String: String])
        #expect(answered.actor == Self.a && decided["token_prefix"] == data["token_prefix"] && decided["via"] == data["via"])

        _ = try p.sql("UPDATE events SET actor = 'mallory@evil.example' WHERE run_id = '\(run)' AND kind = 'vote'")
        let broken = p.product.signoff("audit", "verify", run)
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("BROKEN at event \(vote.sequence)"), "\(broken.stdout)")
        let json = p.product.signoff("audit", "verify", run, "--json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first?["firstBrokenSequence"] as? Int == vote.sequence)
        #expect(p.product.signoff("audit", "verify").status == 1, "verifying every run finds it too")
    }

    // MARK: Exactly once

    @Test(arguments: Backend.allCases)
    func twoRunnersTickingAtOnceFireEachTimerExactlyOnce(_ backend: Backend) async throws {
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a], [
            "expires_after: 1h", "remind_every: 20m", "reminders: 2", "on_timeout: reject"]))
        defer { Task { await p.close() } }
        var runs: [String] = []
        for _ in 0..<4 { runs.append(try await p.enqueue("gate")) }
        try await p.tick()
        let other = try await PolicyLoop.environment(p.product, clock: p.clock, owner: "runner-b")
        defer { Task { await other.store.close() } }
        let runnerA = BatchRunner(environment: p.environment), runnerB = BatchRunner(environment: other)

        p.clock.advance(21 * 60)
        async let x = runnerA.runPass()
        async let y = runnerB.runPass()
        let (ra, rb) = try await (x, y)
        #expect(ra.timersFired + rb.timersFired == 4, "\(ra) \(rb)")
        #expect(p.received(Self.a).filter(\.isReminder).count == 4, "one reminder per request")
        for run in runs {
            #expect(try await p.request(of: run).remindersSent == 1)
            #expect(try await events(p, run).filter { $0.kind == "reminder" }.count == 1)
        }

        p.clock.advance(40 * 60)
        async let x2 = runnerA.runPass()
        async let y2 = runnerB.runPass()
        _ = try await (x2, y2)
        for run in runs {
            #expect(try await p.store.run(id: run)?.status == .rejected)
            #expect(try await events(p, run).filter { $0.kind == "answered" }.count == 1)
        }
        #expect(p.received(Self.a).filter(\.isReminder).count == 4, "the second round fell after the deadline and was withdrawn")
        #expect(p.received(Self.a).filter { $0.subject.contains("Decided:") }.count == 4, "one decided notice per request")
    }

    @Test(arguments: Backend.allCases)
    func twoRunnerProcessesFireEachOverdueTimerOnce(_ backend: Backend) async throws {
        // Paused two hours ago (by the test clock): deadlines and reminder times have all passed in real time.
        let p = try await PolicyLoop.make(backend, job: Self.job(reviewers: [Self.a], [
            "expires_after: 1h", "remind_every: 20m", "reminders: 2", "on_timeout: reject"]), clock: MovableClock(offset: -2 * 3600))
        defer { Task { await p.close() } }
        var runs: [String] = []
        for _ in 0..<6 { runs.append(try await p.enqueue("gate")) }
        try await p.tick()
        let results = Mutex<[TestSupport.ProcessResult]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let r = p.product.signoff("run")
            results.withLock { $0.append(r) }
        }
        for r in results.withLock({ $0 }) { #expect(r.status == 0, "\(r.stderr)") }
        for run in runs {
            #expect(try await p.store.run(id: run)?.status == .rejected)
            #expect(try await events(p, run).filter { $0.kind == "answered" }.count == 1, "one timeout decision per request")
        }
        #expect(p.received(Self.a).filter { $0.subject.contains("Decided:") }.count == 6, "one decided notice per request")
        #expect(p.received(Self.a).filter(\.isReminder).isEmpty, "reminders for a request past its deadline are withdrawn")
    }
}
