import Foundation
import SignoffEngine
import SignoffMail
import SignoffStore

/// The runner's request policies for replies and response files: separation of duties
/// (`forbid:`) and delegation by reply (`DELEGATE: deputy@example.org`, only to `delegates:`).
struct RunnerImportPolicy: ImportPolicy {
    let environment: RunnerEnvironment

    func refusal(for decision: Decision, request: RequestRecord, reviewer: String) async throws -> String? {
        let policy = ImportedRequests.policy(request)
        if case .delegate(let deputy) = decision {
            return Self.delegationRefusal(request, to: deputy, policy: policy)
        }
        return try await Self.forbidden(reviewer, request: request, policy: policy, store: environment.store)
    }

    func acts(on decision: Decision) -> Bool {
        if case .delegate = decision { return true }
        return false
    }

    func act(on decision: Decision, request: RequestRecord, reviewer: String, tokenHash: String?, via: String,
             inbound: InboundRecord, now: Date) async throws -> ImportPolicyRuling {
        guard case .delegate(let deputy) = decision else { return .proceed }
        return try await delegate(request, from: reviewer, to: deputy, policy: RequestMail.Policy.of(request), tokenHash: tokenHash,
                                  via: via, inbound: inbound, now: now)
    }

    /// Why `DELEGATE: deputy` is refused for `request`, or nil when `delegates:` lists the deputy.
    static func delegationRefusal(_ request: RequestRecord, to deputy: EmailAddress, policy: RequestMail.Policy?) -> String? {
        let allowed = policy?.delegates ?? []
        guard allowed.contains(where: { $0.lowercased() == deputy.address.lowercased() }) else {
            let listed = allowed.isEmpty ? "the job lists no `delegates:` for this step"
                : "it may be handed only to \(allowed.joined(separator: ", ")) (`delegates:`)"
            return "DELEGATE to \(deputy.address) is not allowed: \(listed); answer APPROVE or REJECT yourself"
        }
        if request.reviewers.contains(where: { $0.lowercased() == deputy.address.lowercased() }) {
            return "\(deputy.address) is already a reviewer of this request; answer APPROVE or REJECT yourself"
        }
        return nil
    }

    /// Why `reviewer` may not answer `request` under its `forbid:` list, or nil.
    static func forbidden(_ reviewer: String, request: RequestRecord, policy: RequestMail.Policy?,
                          store: any RunStore) async throws -> String? {
        guard let policy, !policy.forbid.isEmpty else { return nil }
        let who = (EmailAddress.parseList(reviewer).first?.address ?? reviewer).lowercased()
        if policy.forbid.contains(where: { $0.lowercased() == who }) {
            return "the job forbids answers from \(who) to this request (`forbid:`); another reviewer must decide"
        }
        if policy.forbid.contains("requester"), let run = try await store.run(id: request.runID), let requester = run.requestedBy {
            let bare = (EmailAddress.parseList(requester).first?.address ?? requester).lowercased()
            if bare == who {
                return "\(who) enqueued the run (\(run.id)), and the job forbids approving your own request (`forbid: [requester]`, separation of duties); another reviewer must decide"
            }
        }
        return nil
    }

    /// Hands the reviewer's part of the request to `deputy`: a token and the request mail for the
    /// deputy (with the remaining reminders), the reviewer's token revoked, the reviewer told, the
    /// inbound row and a `delegated` audit event, all in one transaction.
    func delegate(_ request: RequestRecord, from reviewer: String, to deputy: EmailAddress, policy: RequestMail.Policy?,
                  tokenHash: String?, via: String, inbound: InboundRecord, now: Date) async throws -> ImportPolicyRuling {
        if let reason = Self.delegationRefusal(request, to: deputy, policy: policy) { return .refuse(reason: reason) }
        guard let tokenHash, let human = try? HumanRequest.decode(request.requestData) else {
            return .refuse(reason: "this request cannot be delegated by this message; answer APPROVE or REJECT yourself")
        }
        let composer = try environment.composer()
        let run = try await environment.store.run(id: request.runID)
        let owner = run.flatMap { try? environment.catalog.job(named: $0.job).owner }
        let jobName = run?.job ?? "job"
        let writer = ReviewerMail(composer: composer, job: .init(name: jobName),
                                  run: .init(id: request.runID, attempt: run?.attempt ?? 1, owner: owner),
                                  requestID: request.id, human: human, title: "Delegated to you: " + human.title,
                                  note: "\(reviewer) handed this request to you.")
        let reminders = (policy?.reminderSchedule ?? []).map { Date(timeIntervalSince1970: $0) }.filter { $0 > now }
        let (token, mail) = try writer.compose(to: deputy, kind: .delegation, dueAt: request.dueAt, reminders: reminders, now: now)
        var confirmation = writer.context(for: EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer), dueAt: request.dueAt)
        confirmation.request.title = human.title
        confirmation.decision = .init(outcome: "delegated to \(deputy.address)", by: reviewer, at: now)
        let thanks = try composer.compose(.confirmation, context: confirmation, inReplyTo: via.contains("@") ? via : nil, date: now)
        var record = inbound
        record.reason = "delegated by \(reviewer) to \(deputy.address)"
        let reviewers = request.reviewers.map { $0.lowercased() == reviewer.lowercased() ? deputy.address : $0 }
        do {
            _ = try await environment.store.reassign(RequestReassignment(
                requestID: request.id, tokens: [token], requiredTokenHash: tokenHash, reviewers: reviewers,
                mail: mail + [NewMail(messageID: thanks.messageID, kind: .confirmation, recipient: reviewer,
                                      raw: Data(thanks.rfc5322()), requestID: request.id, runID: request.runID)],
                inbound: record, eventKind: "delegated", actor: reviewer, eventData: ["via": via], at: now))
            return .handled(outcome: .applied, reason: record.reason ?? "delegated", mail: [])
        } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
            if try await environment.store.inboundSeen(dedupeKey: inbound.dedupeKey) != nil { return .duplicate }
            record.outcome = InboundOutcome(rawValue: InboundResult.Outcome.alreadyDecided.rawValue)
            record.reason = error.message
            guard try await environment.store.recordInbound(record) else { return .duplicate }
            return .handled(outcome: .alreadyDecided, reason: error.message, mail: [])
        }
    }
}

/// Request policies for callers outside the runner (the CLI's `signoff respond`).
public enum RequestPolicies {
    /// Why `reviewer` may not answer `request` under the job's `forbid:` list (separation of
    /// duties), or nil when they may.
    public static func forbiddenReason(_ reviewer: String, request: RequestRecord, store: any RunStore) async throws -> String? {
        try await RunnerImportPolicy.forbidden(reviewer, request: request, policy: RequestMail.Policy.of(request), store: store)
    }

    /// The "decided" notices for a request that was just decided: one to each current reviewer
    /// who had not answered (nor is `except`). Queue them with `enqueueMail`.
    public static func decidedNotices(_ environment: RunnerEnvironment, request: RequestRecord, votes: [VoteRecord],
                                      except: String? = nil, now: Date) async -> [NewMail] {
        await DecidedNotices(environment: environment).mail(for: request, votes: votes, except: except, now: now)
    }
}
