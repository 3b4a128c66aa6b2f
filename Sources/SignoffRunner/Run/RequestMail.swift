import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// Turns a pending engine request into the store's request row, one reply token per reviewer, and
/// the request mail to each reviewer, with that reviewer's reminders already composed and
/// scheduled in the outbox (see ``ReviewerMail``).
struct RequestMail {
    let environment: RunnerEnvironment

    /// The policy keys the store keeps with a request (read back by the timer pass and the importer).
    struct Policy: Codable {
        var onTimeout: String
        var remindEvery: Double?
        var reminders: Int
        var escalateTo: [String]
        var delegates: [String]
        var forbid: [String]
        var expiresAfter: Double?
        /// The reminder times scheduled at pause (seconds since 1970), oldest first.
        var reminderSchedule: [Double]?

        /// The policy stored with `request`, if any (read by ``ImportJSON``, or by `JSONDecoder` when
        /// that reader does not handle the bytes: the same answer either way).
        static func of(_ request: RequestRecord) -> Policy? {
            request.policy.flatMap { ImportJSON.policy($0) ?? (try? JSONDecoder().decode(Policy.self, from: $0)) }
        }

        /// Reminder times from `start`: every `remindEvery`, at most `reminders`, all before `dueAt`.
        func reminderTimes(from start: Date, dueAt: Date?) -> [Date] {
            guard let every = remindEvery, every > 0, reminders > 0 else { return [] }
            var out: [Date] = []
            for k in 1...reminders {
                let t = start.addingTimeInterval(every * Double(k))
                if let dueAt, t >= dueAt { break }
                out.append(t)
            }
            return out
        }
    }

    func make(_ pending: PendingRequest, run: RunRecord, job: JobDefinition, now: Date) throws -> (NewRequest, [NewMail]) {
        let data = try pending.dataJSON
        let request = try HumanRequest.decode(data)
        let policy = job.step(request.stepID).flatMap { step -> HumanPolicy? in
            switch step.kind {
            case .approval(let a): return a.policy
            case .ask(let a): return a.policy
            default: return nil
            }
        }
        let dueAt = policy?.expiresAfter.map { now.addingTimeInterval($0) }
        var stored = Policy(onTimeout: policy?.onTimeout.rawValue ?? "reject", remindEvery: policy?.remindEvery,
                            reminders: policy?.reminders ?? 0, escalateTo: policy?.escalateTo ?? [],
                            delegates: policy?.delegates ?? [], forbid: policy?.forbid ?? [],
                            expiresAfter: policy?.expiresAfter)
        let reminderTimes = stored.reminderTimes(from: now, dueAt: dueAt)
        stored.reminderSchedule = reminderTimes.map(\.timeIntervalSince1970)
        let writer = ReviewerMail(composer: try environment.composer(),
                                  job: .init(name: job.name, description: job.description),
                                  run: .init(id: run.id, attempt: run.attempt, owner: job.owner),
                                  requestID: pending.id, human: request)
        var tokens: [NewToken] = []
        var mail: [NewMail] = []
        let reviewers = request.reviewers.isEmpty ? [job.owner].compactMap { $0 } : request.reviewers
        for reviewer in reviewers {
            let address = EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer)
            let (token, reviewerMail) = try writer.compose(to: address, kind: .request, dueAt: dueAt, reminders: reminderTimes, now: now)
            tokens.append(token)
            mail += reviewerMail
        }
        let quorum: Quorum
        switch policy?.quorum ?? .any {
        case .any: quorum = .any
        case .all: quorum = .all
        case .count(let n): quorum = .count(n)
        }
        let newRequest = NewRequest(
            id: pending.id, executorID: pending.executorID, stepID: request.stepID,
            requestType: pending.requestTypeName, requestData: data, responseType: pending.responseTypeName,
            reviewers: reviewers.map { EmailAddress.parseList($0).first?.address ?? $0 }, tokens: tokens, quorum: quorum,
            rejectOn: policy?.rejectOn == .quorum ? .quorum : .any, dueAt: dueAt,
            remindAt: reminderTimes.first,
            policy: try JSONEncoder.sorted.encode(stored))
        return (newRequest, mail)
    }
}

/// The mail one reviewer gets for a request: the request mail with a fresh reply token, and the
/// reminders, composed now (while the plaintext token is in hand) and written to the outbox with
/// `notBefore` set to their times. Only token hashes are stored; the outbox already holds the
/// request mail, so scheduled reminders add no new kind of secret.
///
/// A scheduled reminder is withdrawn by the sender (``OutboxSender``) instead of sent when, at
/// its time, the request is decided, the reviewer has answered, or the token was revoked
/// (escalation, delegation, cancellation).
struct ReviewerMail {
    let composer: MailComposer
    let job: MailTemplateContext.Job
    let run: MailTemplateContext.Run
    let requestID: String
    let human: HumanRequest
    /// Replaces the request's title in the mail (e.g. "Escalated: …").
    var title: String?
    /// A line put above the request's body (who delegated it, why it was escalated).
    var note: String?

    init(composer: MailComposer, job: MailTemplateContext.Job, run: MailTemplateContext.Run, requestID: String,
         human: HumanRequest, title: String? = nil, note: String? = nil) {
        self.composer = composer
        self.job = job
        self.run = run
        self.requestID = requestID
        self.human = human
        self.title = title
        self.note = note
    }

    func context(for reviewer: EmailAddress, dueAt: Date?, reminder: Int? = nil) -> MailTemplateContext {
        let body = [note, human.body].compactMap { $0 }.joined(separator: "\n\n")
        return MailTemplateContext(
            job: job, run: run, stepID: human.stepID,
            request: .init(id: requestID, title: title ?? human.title, body: body.isEmpty ? nil : body,
                           responseKind: human.mailResponseKind, choices: human.choices, reasonRequired: human.requireReason),
            reviewer: reviewer, deadline: dueAt, reminderNumber: reminder)
    }

    /// The token record and the mail (request first, then reminders in time order).
    func compose(to reviewer: EmailAddress, kind: MailKind, dueAt: Date?, reminders: [Date], now: Date) throws -> (NewToken, [NewMail]) {
        let token = ReplyToken()
        let message = try composer.compose(.request, named: human.template, context: context(for: reviewer, dueAt: dueAt),
                                           token: token, date: now)
        var mail = [NewMail(messageID: message.messageID, kind: kind, recipient: reviewer.address,
                            raw: Data(message.rfc5322()), requestID: requestID, runID: run.id)]
        for (i, at) in reminders.enumerated() {
            let id = ReminderMessageID.make(tokenHash: token.sha256Hex, round: i + 1, requestMessageID: message.messageID)
            let reminder = try composer.compose(.reminder, context: context(for: reviewer, dueAt: dueAt, reminder: i + 1),
                                                token: token, inReplyTo: message.messageID, date: at, messageID: id)
            mail.append(NewMail(messageID: reminder.messageID, kind: .reminder, recipient: reviewer.address,
                                raw: Data(reminder.rfc5322()), requestID: requestID, runID: run.id, notBefore: at))
        }
        return (NewToken(tokenHash: token.sha256Hex, reviewer: reviewer.address, expiresAt: dueAt, messageID: message.messageID), mail)
    }
}
