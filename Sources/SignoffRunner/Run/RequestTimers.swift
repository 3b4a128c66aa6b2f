import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// Due request timers, checked on every `signoff run` and worker tick: an expired request gets its
/// `on_timeout` decision, recorded as `system:timeout` (or is escalated); a reminder round whose
/// time has come is recorded (the reminder mails themselves were scheduled in the outbox at pause,
/// with the reviewers' tokens, and go out through the sender). The store's conditional updates make
/// each of these happen once even with several runners ticking at the same moment.
struct RequestTimers {
    let environment: RunnerEnvironment

    /// The system actor timeouts are recorded under.
    static let actor = "system:timeout"

    func fire() async throws -> Int {
        let now = environment.now()
        var fired = 0
        for request in try await environment.store.dueRequests(now: now, limit: 100) {
            let policy = RequestMail.Policy.of(request)
            if let due = request.dueAt, due <= now {
                if try await expire(request, policy: policy, now: now) { fired += 1 }
            } else if let remindAt = request.remindAt, remindAt <= now {
                if try await remind(request, policy: policy, now: now) { fired += 1 }
            }
        }
        return fired
    }

    /// Applies `on_timeout`. Returns false when another runner (or a late reply) got there first.
    func expire(_ request: RequestRecord, policy: RequestMail.Policy?, now: Date) async throws -> Bool {
        var action = policy?.onTimeout ?? "reject"
        if action == "escalate", let policy, !policy.escalateTo.isEmpty {
            let already = Set(request.reviewers.map { $0.lowercased() })
            if !policy.escalateTo.allSatisfy({ already.contains($0.lowercased()) }) {
                return try await escalate(request, to: policy.escalateTo, policy: policy, now: now)
            }
            action = "reject"  // escalated once already and still nobody answered
        }
        let via = Self.actor
        let (verdict, response): (Verdict, Data)
        switch action {
        case "approve":
            (verdict, response) = (.approve, HumanResponse.approve(comment: "approved because nobody answered in time", by: via, via: via))
        case "fail":
            // A rejection the run cannot loop back from is not what `fail` means: fail the run.
            (verdict, response) = (.reject, HumanResponse(decision: "fail", reason: "the request expired", by: via, via: via).json)
        default:
            (verdict, response) = (.reject, HumanResponse.reject(reason: "nobody answered before the deadline", by: via, via: via))
        }
        do {
            let result = try await environment.store.answer(Answer(requestID: request.id, reviewer: via, verdict: verdict, response: response,
                                                                   reason: "expired (on_timeout: \(action))", channel: .system, via: via,
                                                                   at: now, decisive: true))
            let notices = await DecidedNotices(environment: environment).mail(for: result.request, votes: result.votes, now: now)
            if !notices.isEmpty { try await environment.store.enqueueMail(notices, now: now) }
            return true
        } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
            return false  // another runner (or a late reply) got there first
        }
    }

    /// New tokens and request mail for `escalate_to` (with their own reminders); the old tokens stop
    /// working, the escalation targets become the reviewers, and a new deadline and reminder
    /// schedule start.
    func escalate(_ request: RequestRecord, to addresses: [String], policy: RequestMail.Policy, now: Date) async throws -> Bool {
        guard let human = try? HumanRequest.decode(request.requestData) else { return false }
        let composer = try environment.composer()
        let run = try await environment.store.run(id: request.runID)
        let owner = run.flatMap { try? environment.catalog.job(named: $0.job).owner }
        let dueAt = now.addingTimeInterval(policy.expiresAfter ?? 86400)
        let writer = ReviewerMail(composer: composer, job: .init(name: run?.job ?? "job"),
                                  run: .init(id: request.runID, attempt: run?.attempt ?? 1, owner: owner),
                                  requestID: request.id, human: human, title: "Escalated: " + human.title,
                                  note: "Nobody among \(request.reviewers.joined(separator: ", ")) answered in time, so this request was escalated to you.")
        let reminders = policy.reminderTimes(from: now, dueAt: dueAt)
        // The escalation's reminder times join the schedule, so its rounds are recorded like the
        // first reviewers' (`reminders_sent`, a `reminder` event) and a delegation hands on the
        // ones still to come.
        var escalated = policy
        escalated.reminderSchedule = (policy.reminderSchedule ?? []) + reminders.map(\.timeIntervalSince1970)
        var tokens: [NewToken] = []
        var mail: [NewMail] = []
        var reviewers: [String] = []
        for reviewer in addresses {
            let address = EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer)
            let (token, reviewerMail) = try writer.compose(to: address, kind: .escalation, dueAt: dueAt, reminders: reminders, now: now)
            tokens.append(token)
            mail += reviewerMail
            reviewers.append(address.address)
        }
        // The escalation targets decide among themselves: the quorum shrinks to what they can reach.
        let needed = request.quorum.approvalsNeeded(reviewers: request.reviewers.count)
        let quorum: Quorum = needed <= 1 ? .any : (needed >= reviewers.count ? .all : .count(needed))
        do {
            _ = try await environment.store.reassign(RequestReassignment(
                requestID: request.id, tokens: tokens, revokingReviewers: request.reviewers, reviewers: reviewers,
                quorum: quorum, dueAt: dueAt, remindAt: reminders.first, policy: try JSONEncoder.sorted.encode(escalated),
                mail: mail, eventKind: "escalated", actor: Self.actor,
                eventData: ["reason": "no decision by \(request.dueAt.map { "\($0)" } ?? "the deadline")"], at: now))
            return true
        } catch let error as StoreError where error.code == .alreadyDecided {
            return false  // decided (or escalated by another runner) meanwhile
        }
    }

    /// Records the reminder rounds whose time has come (the mails are already in the outbox).
    func remind(_ request: RequestRecord, policy: RequestMail.Policy?, now: Date) async throws -> Bool {
        let schedule = (policy?.reminderSchedule ?? []).map { Date(timeIntervalSince1970: $0) }
        let due = schedule.filter { $0 <= now }.count
        var sent = request.remindersSent
        var recorded = false
        if due <= sent {
            // Nothing scheduled is due (an old row, or a changed policy): stop the timer.
            return try await environment.store.recordReminder(requestID: request.id, expectedRemindersSent: sent,
                                                              nextRemindAt: schedule.first { $0 > now }, mail: [], now: now) && false
        }
        while sent < due {
            let next = sent + 1 < schedule.count ? schedule[sent + 1] : nil
            guard try await environment.store.recordReminder(requestID: request.id, expectedRemindersSent: sent,
                                                             nextRemindAt: next, mail: [], now: now) else { break }
            recorded = true
            sent += 1
        }
        return recorded
    }
}
