import Foundation
import Logging
import Synchronization
import Testing
@testable import SignoffRunner
import SignoffStore

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let time = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    func now() -> Date { time.withLock { $0 } }
    func advance(_ seconds: Double) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Deadlines and reminders live in the database and fire on the next `run` pass, once.
@Suite(.serialized)
struct RequestTimerTests {
    static func environment(_ p: Product, clock: TestClock) async throws -> RunnerEnvironment {
        let config = try ConfigLoader.load(explicit: p.dir + "/signoff.yaml", databaseOverride: p.database)
        var env = try await RunnerEnvironment.open(config: config, logger: Logger(label: "test"))
        env.now = { clock.now() }
        return env
    }

    /// The `timed` job with `on_timeout: onTimeout`, enqueued once, on a clock the test moves.
    static func started(_ backend: Backend, onTimeout: String) async throws
        -> (Product, RunnerEnvironment, BatchRunner, TestClock, RunRecord) {
        let p = try Product.make(backend)
        try p.writeJob("timed", job.replacingOccurrences(of: "ON_TIMEOUT", with: onTimeout))
        let clock = TestClock()
        let env = try await environment(p, clock: clock)
        let (run, _) = try await env.store.enqueue(NewRun(job: "timed"), now: clock.now())
        return (p, env, BatchRunner(environment: env), clock, run)
    }

    static let job = """
        name: timed
        steps:
          - id: ok
            approval:
              reviewers: [a@example.org]
              expires_after: 1h
              on_timeout: ON_TIMEOUT
              remind_every: 10m
              reminders: 2
          - id: after
            shell: ["echo", "went on"]
        """

    @Test(arguments: Backend.allCases)
    func remindersGoOutOnScheduleNeverTwiceThenExpiryRejects(_ backend: Backend) async throws {
        let (p, env, runner, clock, run) = try await Self.started(backend, onTimeout: "reject")
        defer { p.cleanUp() }
        var report = try await runner.runPass()
        #expect(report.waiting == 1)
        #expect(report.mailSent == 1)

        clock.advance(11 * 60)
        report = try await runner.runPass()
        #expect(report.timersFired == 1)
        #expect(report.mailSent == 1, "the first reminder")
        report = try await runner.runPass()
        #expect(report.timersFired == 0 && report.mailSent == 0, "a reminder went out twice")

        clock.advance(11 * 60)
        report = try await runner.runPass()
        #expect(report.mailSent == 1, "the second reminder")
        clock.advance(11 * 60)
        report = try await runner.runPass()
        #expect(report.mailSent == 0, "more reminders than `reminders: 2`")
        let reminders = p.outbox().filter { $0.contains("In-Reply-To:") }
        #expect(reminders.count == 2)

        clock.advance(30 * 60)
        report = try await runner.runPass()
        #expect(report.rejected == 1)
        let final = try #require(try await env.store.run(id: run.id))
        #expect(final.status == .rejected)
        let request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.answeredBy == "system:timeout")
        await env.store.close()
    }

    @Test(arguments: Backend.allCases)
    func expiryWithOnTimeoutApproveLetsTheRunGoOn(_ backend: Backend) async throws {
        let (p, env, runner, clock, run) = try await Self.started(backend, onTimeout: "approve")
        defer { p.cleanUp() }
        _ = try await runner.runPass()
        clock.advance(2 * 3600)
        let report = try await runner.runPass()
        #expect(report.succeeded == 1)
        #expect(try await env.store.run(id: run.id)?.status == .succeeded)
        await env.store.close()
    }

    @Test func expiryWithOnTimeoutFailFailsTheRun() async throws {
        let (p, env, runner, clock, run) = try await Self.started(.sqlite, onTimeout: "fail")
        defer { p.cleanUp() }
        _ = try await runner.runPass()
        clock.advance(2 * 3600)
        _ = try await runner.runPass()
        let final = try #require(try await env.store.run(id: run.id))
        #expect(final.status == .failed)
        #expect(final.error?.contains("on_timeout: fail") == true, "\(final.error ?? "")")
        await env.store.close()
    }

    @Test(arguments: Backend.allCases)
    func escalationMailsNewReviewersAndOldTokensStopWorking(_ backend: Backend) async throws {
        let (p, env, runner, clock, run) = try await Self.started(backend, onTimeout: "escalate\n      escalate_to: [head@example.org]")
        defer { p.cleanUp() }
        _ = try await runner.runPass()
        clock.advance(2 * 3600)
        _ = try await runner.runPass()
        let request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.status == .pending)
        #expect(request.reviewers.contains("head@example.org"))
        let tokens = try await env.store.tokens(requestID: request.id)
        #expect(tokens.filter { $0.state == .active }.map(\.reviewer) == ["head@example.org"])
        #expect(tokens.contains { $0.reviewer == "a@example.org" && $0.state == .revoked })
        #expect(p.requestMails().contains { $0.contains("To: head@example.org") })

        // The head answers by mail; the run goes on.
        let mail = try #require(p.requestMails().first { $0.contains("To: head@example.org") })
        try p.reply(to: mail, from: "head@example.org", body: "APPROVE")
        _ = try await Importer.run(env)
        _ = try await runner.runPass()
        #expect(try await env.store.run(id: run.id)?.status == .succeeded)

        // Had nobody answered, the second expiry rejects instead of escalating again.
        await env.store.close()
    }

    /// An escalation starts its own reminders (remind_every from the escalation): their rounds are
    /// recorded on the request like the first reviewers' — `reminders_sent` goes on counting, a
    /// `reminder` event each — and the reminders themselves go out to the escalation target.
    @Test(arguments: Backend.allCases)
    func escalationRemindersAreCountedLikeTheFirstOnes(_ backend: Backend) async throws {
        let (p, env, runner, clock, run) = try await Self.started(backend, onTimeout: "escalate\n      escalate_to: [head@example.org]")
        defer { p.cleanUp() }
        _ = try await runner.runPass()
        clock.advance(25 * 60)
        _ = try await runner.runPass()  // both first reminders are due
        var request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.remindersSent == 2)
        #expect(request.remindAt == nil)

        clock.advance(40 * 60)  // past the deadline: escalated
        _ = try await runner.runPass()
        let escalatedAt = clock.now()
        request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.reviewers == ["head@example.org"])
        #expect(request.remindAt.map { $0.timeIntervalSince1970 } == escalatedAt.addingTimeInterval(10 * 60).timeIntervalSince1970)

        clock.advance(11 * 60)
        var report = try await runner.runPass()
        #expect(report.timersFired == 1)
        request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.remindersSent == 3)
        clock.advance(10 * 60)
        report = try await runner.runPass()
        request = try #require(try await env.store.requests(runID: run.id).first)
        #expect(request.remindersSent == 4)
        #expect(request.remindAt == nil, "more rounds than the escalation's `reminders: 2`")
        report = try await runner.runPass()
        #expect(report.timersFired == 0, "a round was recorded twice")

        let events = try await env.store.events(runID: run.id)
        #expect(events.filter { $0.kind == "reminder" }.count == 4)
        let toHead = p.outbox().filter { $0.contains("To: head@example.org") && $0.contains("In-Reply-To:") }
        #expect(toHead.count == 2, "the escalation's two reminders were not both sent")
        await env.store.close()
    }
}

