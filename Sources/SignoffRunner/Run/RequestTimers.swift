import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// Due request timers, checked on every `signoff run` and worker tick: an expired request gets its
/// `on_timeout` decision, recorded as `system:timeout`; an unanswered one past its reminder time
/// gets a reminder in the request's thread. The store makes each of these happen once even with
/// several runners.
struct RequestTimers {
    let environment: RunnerEnvironment

    func fire() async throws -> Int {
        let now = environment.now()
        var fired = 0
        for request in try await environment.store.dueRequests(now: now, limit: 100) {
            let policy = request.policy.flatMap { try? JSONDecoder().decode(RequestMail.Policy.self, from: $0) }
            if let due = request.dueAt, due <= now {
                try await expire(request, policy: policy, now: now)
                fired += 1
            } else if let remindAt = request.remindAt, remindAt <= now {
                if try await remind(request, policy: policy, now: now) { fired += 1 }
            }
        }
        return fired
    }

    func expire(_ request: RequestRecord, policy: RequestMail.Policy?, now: Date) async throws {
        var action = policy?.onTimeout ?? "reject"
        if action == "escalate", let policy, !policy.escalateTo.isEmpty {
            let already = Set(request.reviewers.map { $0.lowercased() })
            if !policy.escalateTo.allSatisfy({ already.contains($0.lowercased()) }) {
                try await escalate(request, to: policy.escalateTo, policy: policy, now: now)
                return
            }
            action = "reject"  // escalated once already and still nobody answered
        }
        let via = "system:timeout"
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
            _ = try await environment.store.answer(Answer(requestID: request.id, reviewer: via, verdict: verdict, response: response,
                                                          reason: "expired (on_timeout: \(action))", channel: .system, via: via,
                                                          at: now, decisive: true))
        } catch let error as StoreError where error.code == .alreadyDecided {
            // Another runner (or a late reply) got there first.
        }
    }

    /// New tokens and request mail for `escalate_to`; the old tokens stop working; a new deadline.
    func escalate(_ request: RequestRecord, to addresses: [String], policy: RequestMail.Policy, now: Date) async throws {
        guard let human = try? HumanRequest.decode(request.requestData), let composer = try? environment.composer() else { return }
        let run = try await environment.store.run(id: request.runID)
        let owner = run.flatMap { try? environment.catalog.job(named: $0.job).owner }
        let dueAt = policy.expiresAfter.map { now.addingTimeInterval($0) }
        var tokens: [NewToken] = []
        var mail: [NewMail] = []
        for reviewer in addresses {
            let address = EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer)
            let token = ReplyToken()
            let context = MailTemplateContext(
                job: .init(name: run?.job ?? "job"), run: .init(id: request.runID, attempt: run?.attempt ?? 1, owner: owner),
                stepID: human.stepID,
                request: .init(id: request.id, title: "Escalated: " + human.title, body: human.body,
                               responseKind: human.mailResponseKind, choices: human.choices, reasonRequired: human.requireReason),
                reviewer: address, deadline: dueAt)
            let message = try composer.compose(.request, named: human.template, context: context, token: token, date: now)
            tokens.append(NewToken(tokenHash: token.sha256Hex, reviewer: address.address, expiresAt: dueAt, messageID: message.messageID))
            mail.append(NewMail(messageID: message.messageID, kind: .escalation, recipient: address.address,
                                raw: Data(message.rfc5322()), requestID: request.id, runID: request.runID))
        }
        do {
            try await environment.store.issueTokens(requestID: request.id, tokens: tokens, revoking: request.reviewers,
                                                    newDueAt: dueAt ?? now.addingTimeInterval(86400), mail: mail,
                                                    actor: "system:timeout", now: now)
        } catch let error as StoreError where error.code == .alreadyDecided {
            // Decided meanwhile: nothing to escalate.
        }
    }

    func remind(_ request: RequestRecord, policy: RequestMail.Policy?, now: Date) async throws -> Bool {
        guard let policy, let every = policy.remindEvery else { return false }
        let next = request.remindersSent + 1 < policy.reminders ? now.addingTimeInterval(every) : nil
        guard request.remindersSent < policy.reminders else {
            return try await environment.store.recordReminder(requestID: request.id, expectedRemindersSent: request.remindersSent,
                                                              nextRemindAt: nil, mail: [], now: now) && false
        }
        // Reminders go in the request's thread; the request mail itself carries the token, so the
        // reminder repeats the question and asks to reply to the original mail.
        var mail: [NewMail] = []
        if let data = try? HumanRequest.decode(request.requestData), let composer = try? environment.composer() {
            let tokens = try await environment.store.tokens(requestID: request.id).filter { $0.state == .active }
            for token in tokens {
                let context = MailTemplateContext(
                    job: .init(name: (try? await environment.store.run(id: request.runID))?.job ?? "job"),
                    run: .init(id: request.runID), stepID: data.stepID,
                    request: .init(id: request.id, title: data.title, body: data.body, responseKind: data.mailResponseKind,
                                   choices: data.choices, reasonRequired: data.requireReason),
                    reviewer: EmailAddress(token.reviewer), deadline: request.dueAt,
                    reminderNumber: request.remindersSent + 1)
                guard let message = try? composer.compose(.reminder, context: context, inReplyTo: token.messageID, date: now) else { continue }
                mail.append(NewMail(messageID: message.messageID, kind: .reminder, recipient: token.reviewer,
                                    raw: Data(message.rfc5322()), requestID: request.id, runID: request.runID))
            }
        }
        return try await environment.store.recordReminder(requestID: request.id, expectedRemindersSent: request.remindersSent,
                                                          nextRemindAt: next, mail: mail, now: now)
    }
}
