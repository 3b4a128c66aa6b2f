import Foundation
import SignoffMail
import SignoffStore

/// What the importer needs to know about a request that only the runner knows (the job's
/// request payload is the runner's type): the grammar a reply is read with, and the response
/// bytes the engine receives for a decision.
public protocol ImportRequestInterpreter: Sendable {
    /// The grammar for replies to `request`; nil when the request cannot be answered by mail.
    func expectedResponse(for request: RequestRecord) -> ExpectedResponse?
    /// The engine's response bytes for `decision`; nil when the decision is not accepted for
    /// this request (e.g. DELEGATE to an address the job does not list).
    func response(for decision: Decision, request: RequestRecord, by reviewer: String, via: String?) -> Data?
}

/// Something the importer tells a person by mail.
public enum ImportNotice: Sendable {
    /// A decision was recorded (`decided` false: a vote towards a quorum). The confirmation to
    /// `reviewer` only: the other reviewers are told by `.decided`.
    case confirmation(request: RequestRecord, decision: Decision, reviewer: String, decided: Bool, inReplyTo: String?, subject: String?)
    /// `request` was just decided (as the deciding transaction left it, with its `votes`): each
    /// current reviewer who did not vote (nor is `except`) is told their answer is no longer needed.
    case decided(request: RequestRecord, votes: [VoteRecord], except: String?)
    /// The reply was ambiguous or its value invalid; `reason` says what to write instead.
    /// The composer enforces "at most three per token" (`tokenHash`).
    case clarification(request: RequestRecord, reviewer: String, reason: String, tokenHash: String?, inReplyTo: String?, subject: String?)
    /// A reply came for a request that is already decided.
    case alreadyDecided(request: RequestRecord, reviewer: String, inReplyTo: String?, subject: String?)
    /// A request mail bounced; the run's owner should know.
    case bounced(mail: OutboxMail, reason: String)
}

/// Renders notices into outbox mail (the mail-out side's `MailTemplates` + composer). Returning
/// an empty list sends nothing.
public protocol ImportNoticeComposer: Sendable {
    func mail(for notice: ImportNotice, now: Date) async throws -> [NewMail]
    /// The mail of many notices (one list per notice, in order): an import batch's notices, so a
    /// composer can read what they share (their runs) once. Default: `mail(for:now:)` for each.
    func mail(for notices: [ImportNotice], now: Date) async throws -> [[NewMail]]
    /// The same, with the notices' runs the importer already read (`runs`, by id; others are
    /// read by the composer). Default: `mail(for:now:)`.
    func mail(for notices: [ImportNotice], runs: [String: RunRecord], now: Date) async throws -> [[NewMail]]
}

extension ImportNoticeComposer {
    public func mail(for notices: [ImportNotice], runs: [String: RunRecord], now: Date) async throws -> [[NewMail]] {
        try await mail(for: notices, now: now)
    }

    public func mail(for notices: [ImportNotice], now: Date) async throws -> [[NewMail]] {
        var out: [[NewMail]] = []
        out.reserveCapacity(notices.count)
        for notice in notices { out.append(try await mail(for: notice, now: now)) }
        return out
    }
}

/// A composer that sends nothing (tests, and setups without outgoing mail).
public struct SilentNoticeComposer: ImportNoticeComposer {
    public init() {}
    public func mail(for notice: ImportNotice, now: Date) async throws -> [NewMail] { [] }
    public func mail(for notices: [ImportNotice], now: Date) async throws -> [[NewMail]] { notices.map { _ in [] } }
}
