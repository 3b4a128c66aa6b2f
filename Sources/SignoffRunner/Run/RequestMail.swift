import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// Turns a pending engine request into the store's request row, one reply token per reviewer, and
/// the request mail to each reviewer.
struct RequestMail {
    let environment: RunnerEnvironment

    /// The policy keys the store keeps with a request (read back by the timer pass).
    struct Policy: Codable {
        var onTimeout: String
        var remindEvery: Double?
        var reminders: Int
        var escalateTo: [String]
        var delegates: [String]
        var forbid: [String]
        var expiresAfter: Double?
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
        let composer = try environment.composer()
        var tokens: [NewToken] = []
        var mail: [NewMail] = []
        let reviewers = request.reviewers.isEmpty ? [job.owner].compactMap { $0 } : request.reviewers
        for reviewer in reviewers {
            let address = EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer)
            let token = ReplyToken()
            let context = MailTemplateContext(
                job: .init(name: job.name, description: job.description),
                run: .init(id: run.id, attempt: run.attempt, owner: job.owner), stepID: request.stepID,
                request: .init(id: pending.id, title: request.title, body: request.body,
                               responseKind: request.mailResponseKind, choices: request.choices,
                               reasonRequired: request.requireReason),
                reviewer: address, deadline: dueAt)
            let message = try composer.compose(.request, named: request.template, context: context, token: token, date: now)
            tokens.append(NewToken(tokenHash: token.sha256Hex, reviewer: address.address, expiresAt: dueAt,
                                   messageID: message.messageID))
            mail.append(NewMail(messageID: message.messageID, kind: .request, recipient: address.address,
                                raw: Data(message.rfc5322()), requestID: pending.id, runID: run.id))
        }
        let stored = Policy(onTimeout: policy?.onTimeout.rawValue ?? "reject", remindEvery: policy?.remindEvery,
                            reminders: policy?.reminders ?? 0, escalateTo: policy?.escalateTo ?? [],
                            delegates: policy?.delegates ?? [], forbid: policy?.forbid ?? [],
                            expiresAfter: policy?.expiresAfter)
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
            remindAt: policy?.remindEvery.map { now.addingTimeInterval($0) },
            policy: try JSONEncoder.sorted.encode(stored))
        return (newRequest, mail)
    }
}
