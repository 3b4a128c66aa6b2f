import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// The "decided" notice: when a request is decided (quorum met, a deciding rejection, a timeout,
/// an operator), each current reviewer who had not answered is told, in the request's thread, that
/// their answer is no longer needed. Their tokens were revoked in the deciding transaction.
struct DecidedNotices {
    let environment: RunnerEnvironment

    /// Current reviewers of `request` who did not vote.
    static func recipients(_ request: RequestRecord, votes: [VoteRecord], except: String? = nil) -> [String] {
        var voted = Set(votes.map { $0.reviewer.lowercased() })
        if let except { voted.insert(except.lowercased()) }
        var seen = Set<String>()
        return request.reviewers.filter { voted.insert($0.lowercased()).inserted && seen.insert($0.lowercased()).inserted }
    }

    /// The notices for a just-decided request (empty when it is not decided, or mail cannot be composed).
    func mail(for request: RequestRecord, votes: [VoteRecord], except: String? = nil, now: Date) async -> [NewMail] {
        guard request.status != .pending, let composer = try? environment.composer() else { return [] }
        let recipients = Self.recipients(request, votes: votes, except: except)
        guard !recipients.isEmpty else { return [] }
        let human = try? HumanRequest.decode(request.requestData)
        let run = try? await environment.store.run(id: request.runID)
        let tokens = (try? await environment.store.tokens(requestID: request.id)) ?? []
        var out: [NewMail] = []
        for reviewer in recipients {
            let address = EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer)
            var context = MailTemplateContext(
                job: .init(name: run?.job ?? "job"), run: .init(id: request.runID, attempt: run?.attempt ?? 1),
                stepID: request.stepID ?? "",
                request: .init(id: request.id, title: human?.title ?? "Request \(request.id)"),
                reviewer: address)
            context.decision = .init(outcome: request.decision ?? request.status.rawValue, by: request.answeredBy, at: request.answeredAt)
            let thread = tokens.last { $0.reviewer.lowercased() == reviewer.lowercased() }?.messageID
            guard let message = try? composer.compose(.decided, context: context, to: address, inReplyTo: thread, date: now) else { continue }
            out.append(NewMail(messageID: message.messageID, kind: .decided, recipient: address.address, raw: Data(message.rfc5322()),
                               requestID: request.id, runID: request.runID))
        }
        return out
    }
}
