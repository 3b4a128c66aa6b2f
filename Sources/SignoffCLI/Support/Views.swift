import Foundation
import SignoffRunner
import SignoffStore

/// JSON shapes of the listings (stable keys, ISO 8601 times).
struct RunView: Encodable {
    var id: String
    var job: String
    /// One of queued running waiting succeeded rejected failed cancelled expired.
    var status: String
    var attempt: Int
    var rerunOf: String?
    var requestedBy: String?
    var createdAt: Date
    var startedAt: Date?
    var finishedAt: Date?
    var error: String?

    init(_ r: RunRecord) {
        id = r.id; job = r.job; status = r.status.rawValue; attempt = r.attempt; rerunOf = r.rerunOf
        requestedBy = r.requestedBy; createdAt = r.createdAt; startedAt = r.startedAt; finishedAt = r.finishedAt; error = r.error
    }
}

struct VoteView: Encodable {
    var reviewer: String
    var verdict: String
    var reason: String?
    var channel: String
    var via: String?
    var at: Date
    var tokenHashPrefix: String?

    init(_ v: VoteRecord) {
        reviewer = v.reviewer; verdict = v.verdict.rawValue; reason = v.reason; channel = v.channel.rawValue
        via = v.via; at = v.at; tokenHashPrefix = v.tokenHash.map { String($0.prefix(12)) }
    }
}

struct RequestView: Encodable {
    var id: String
    var runID: String
    var step: String?
    var status: String
    var title: String?
    var reviewers: [String]
    var quorum: String
    var dueAt: Date?
    /// True when a pending request is past `dueAt` (the next `signoff run` applies `on_timeout`).
    var overdue: Bool
    /// When the next reminder round is due.
    var remindAt: Date?
    var remindersSent: Int
    /// `any` or `quorum`: whether one rejection decides.
    var rejectOn: String
    var decision: String?
    var answeredBy: String?
    var answeredVia: String?
    var answeredAt: Date?
    var createdAt: Date
    var votes: [VoteView]

    init(_ r: RequestRecord, votes: [VoteRecord]) {
        id = r.id; runID = r.runID; step = r.stepID; status = r.status.rawValue
        title = (try? HumanRequest.decode(r.requestData))?.title
        reviewers = r.reviewers; quorum = r.quorum.description; dueAt = r.dueAt; remindAt = r.remindAt
        overdue = r.status == .pending && (r.dueAt.map { $0 < Date() } ?? false); rejectOn = r.rejectOn.rawValue
        remindersSent = r.remindersSent; decision = r.decision; answeredBy = r.answeredBy; answeredVia = r.answeredVia
        answeredAt = r.answeredAt; createdAt = r.createdAt
        self.votes = votes.map(VoteView.init)
    }
}

struct EventView: Encodable {
    var sequence: Int
    var kind: String
    var actor: String?
    var data: String
    var at: Date
    var hash: String

    init(_ e: EventRecord) {
        sequence = e.sequence; kind = e.kind; actor = e.actor; data = e.data; at = e.at; hash = e.hash
    }
}

/// Looks a run up, with a clear not-found error.
func requireRun(_ store: any RunStore, _ id: String) async throws -> RunRecord {
    guard let run = try await store.run(id: id) else {
        throw RunnerError.notFound("run.not_found", "no run with id `\(id)`; list runs with `signoff history`")
    }
    return run
}
