import Foundation
import Logging

/// Which database a store talks to.
public enum StoreBackend: String, Sendable, CaseIterable, Codable {
    case sqlite
    case postgres
}

/// The effect of `pause`.
public struct PauseResult: Sendable, Hashable {
    /// Requests newly recorded by this pause (requests already known, re-emitted by a restored
    /// checkpoint, are left as they are and their tokens and mail are skipped).
    public var createdRequestIDs: [String]
    /// The checkpoint sequence saved, if a checkpoint was given.
    public var checkpointSequence: Int?
}

/// Durable state for Signoff: runs, checkpoints, human requests, votes, the audit trail, the mail
/// outbox and the inbound log. One implementation per database (SQLite, PostgreSQL).
///
/// Every method is one transaction. Runner writes take the `Lease` returned by `claimRuns` and
/// fail with `StoreError.leaseLost` when another runner has taken the run over.
/// Time is passed in (`now:` / `at:`) so callers can inject a clock.
public protocol RunStore: Sendable {
    /// The database kind.
    var backend: StoreBackend { get }
    /// The connection target with any password removed (for logs and messages).
    var redactedTarget: String { get }

    // MARK: Schema

    /// Applies pending migrations (also done by `openStore`). Safe when several processes start at once.
    func migrate() async throws
    /// The schema version the database is at.
    func schemaVersion() async throws -> Int
    /// Closes every connection. Idempotent; later calls fail with `StoreError.closed`.
    func close() async

    // MARK: Runs

    /// Queues a run. With a `uniqueKey` already used, returns the existing run (`created` false).
    func enqueue(_ run: NewRun, now: Date) async throws -> (run: RunRecord, created: Bool)
    /// Queues many runs in one transaction (benchmarks, bulk imports).
    func enqueueMany(_ runs: [NewRun], now: Date) async throws -> [RunRecord]
    /// One run, or nil.
    func run(id: String) async throws -> RunRecord?
    /// Runs matching a filter, newest first.
    func runs(filter: RunFilter) async throws -> [RunRecord]
    /// Cancels a queued, running or waiting run: pending requests cancelled, tokens revoked.
    func cancel(runID: String, by actor: String?, reason: String?, now: Date) async throws -> RunRecord
    /// Queues a new run of a finished run's job and input, with `rerunOf` set and attempt + 1.
    func rerun(runID: String, requestedBy: String?, now: Date) async throws -> RunRecord

    // MARK: Claiming and executing

    /// Claims up to `limit` runnable runs (queued, or running with an expired lease) for `owner`.
    func claimRuns(owner: String, limit: Int, leaseSeconds: Double, now: Date) async throws -> [ClaimedRun]
    /// Extends a lease. Throws `leaseLost` when the run is no longer ours.
    func heartbeat(_ lease: Lease, until: Date) async throws -> Lease
    /// Saves a checkpoint under the lease and marks `delivered` answers as handed to the engine.
    @discardableResult
    func saveCheckpoint(_ lease: Lease, checkpoint: NewCheckpoint, delivered: [String], now: Date) async throws -> CheckpointRecord
    /// Marks answers as handed to the engine without saving a checkpoint.
    func consumeAnswers(_ lease: Lease, requestIDs: [String], now: Date) async throws
    /// One transaction: checkpoint + requests + tokens + outbox + run → waiting + events.
    func pause(_ lease: Lease, checkpoint: NewCheckpoint?, requests: [NewRequest], mail: [NewMail],
               delivered: [String], now: Date) async throws -> PauseResult
    /// Ends a run (terminal status) with its output or error and any mail, releasing the lease.
    func finish(_ completion: RunCompletion, now: Date) async throws
    /// Ends many runs in one transaction; returns the runs whose lease was lost (left untouched).
    func finishMany(_ completions: [RunCompletion], now: Date) async throws -> [String]
    /// Gives a claimed run back (status queued, lease cleared), e.g. on shutdown.
    func release(_ lease: Lease, now: Date) async throws

    // MARK: Checkpoints

    /// The run's newest checkpoint.
    func latestCheckpoint(runID: String) async throws -> CheckpointRecord?
    /// A checkpoint by its id.
    func checkpoint(runID: String, id: String) async throws -> CheckpointRecord?
    /// A checkpoint by its id alone (the newest if several runs used the same id).
    func checkpoint(id: String) async throws -> CheckpointRecord?
    /// Saves a checkpoint without a lease (tools, imports, tests); runners use `saveCheckpoint`.
    @discardableResult
    func putCheckpoint(runID: String, checkpoint: NewCheckpoint, now: Date) async throws -> CheckpointRecord
    /// All checkpoints of a run, oldest first (without their data when `withData` is false).
    func checkpoints(runID: String, withData: Bool) async throws -> [CheckpointRecord]
    /// Deletes a checkpoint (not the latest one of an unfinished run).
    func deleteCheckpoint(runID: String, id: String) async throws

    // MARK: Requests and answers

    /// One request.
    func request(id: String) async throws -> RequestRecord?
    /// All pending requests, oldest first.
    func pendingRequests() async throws -> [RequestRecord]
    /// A run's requests, oldest first.
    func requests(runID: String) async throws -> [RequestRecord]
    /// Votes recorded for a request, oldest first.
    func votes(requestID: String) async throws -> [VoteRecord]
    /// What a reply token (by its SHA-256 hex) was issued for.
    func tokenLookup(tokenHash: String) async throws -> TokenRecord?
    /// Tokens of a request.
    func tokens(requestID: String) async throws -> [TokenRecord]
    /// One transaction: vote + (if it decides) request answered + other tokens revoked + run queued
    /// + token used + inbound row + events. A request not pending → `StoreError.alreadyDecided`, nothing changed.
    func answer(_ answer: Answer) async throws -> AnswerResult
    /// Many answers in one transaction, with the results (and the database) of `answer(_:)` called
    /// for each in order: a later answer to a request sees what the earlier ones did (it may be
    /// refused because an earlier one decided the request). One answer's refusal (unknown or expired
    /// token, already decided, already voted) is its own `.failure`; the others are still recorded.
    /// Throws only when the batch as a whole could not be written (connection lost, store closed).
    /// Concurrent `answer(_:)` calls are grouped into such batches by the store itself.
    func answerMany(_ answers: [Answer]) async throws -> [Result<AnswerResult, StoreError>]
    /// Pending requests with `dueAt` or `remindAt` at or before `now` (the runner's timer tick).
    func dueRequests(now: Date, limit: Int) async throws -> [RequestRecord]
    /// Records a reminder round: reminders_sent + 1, next remind time, mail in the same transaction.
    /// Returns false (and writes nothing) when another runner already recorded this round.
    func recordReminder(requestID: String, expectedRemindersSent: Int, nextRemindAt: Date?,
                        mail: [NewMail], now: Date) async throws -> Bool
    /// Issues new tokens for a pending request (escalation, delegation), optionally revoking others,
    /// with mail, in one transaction.
    /// `revoking` lists reviewer addresses whose active tokens stop working; `newDueAt` replaces the deadline when set.
    func issueTokens(requestID: String, tokens: [NewToken], revoking: [String], newDueAt: Date?,
                     mail: [NewMail], actor: String?, now: Date) async throws
    /// Hands a pending request to other reviewers (escalation, delegation) in one transaction: new
    /// tokens, old ones revoked, reviewer list replaced, mail, inbound row, audit event. A request no
    /// longer pending → `alreadyDecided`; a `requiredTokenHash` no longer active → `alreadyVoted` /
    /// `alreadyDecided`; nothing changed then.
    func reassign(_ change: RequestReassignment) async throws -> RequestRecord
    /// Ends a pending request without a decision: request expired, its tokens revoked, the run's other
    /// pending requests cancelled and the waiting run ended as `expired`, in one transaction.
    func expireRequest(requestID: String, actor: String?, reason: String?, now: Date) async throws -> RequestRecord

    // MARK: Inbound log

    /// Records an inbound message or file. Returns false when its dedupe key was already recorded.
    @discardableResult
    func recordInbound(_ record: InboundRecord) async throws -> Bool
    /// The outcome recorded for a dedupe key, if it was seen.
    func inboundSeen(dedupeKey: String) async throws -> InboundOutcome?
    /// Records many inbound messages (answers or plain rows) in one transaction; see RunStore+Batch.swift.
    func recordInboundBatch(_ writes: [InboundWrite], now: Date) async throws -> [InboundWriteResult]
    /// `tokenLookup` and the token's request for many token hashes in one read; see RunStore+Batch.swift.
    func tokenLookups(tokenHashes: [String]) async throws -> [String: TokenMatch]
    /// Many runs by id in one read (ids not found are absent); see RunStore+Batch.swift.
    func runs(ids: [String]) async throws -> [String: RunRecord]

    // MARK: Outbox

    /// Adds mail to the outbox outside of any other change (e.g. clarifications).
    func enqueueMail(_ mail: [NewMail], now: Date) async throws
    /// Pending mail whose next attempt is due, oldest first.
    func dueMail(now: Date, limit: Int) async throws -> [OutboxMail]
    /// Marks a mail sent.
    func markSent(id: Int64, at: Date) async throws
    /// Records a failed attempt; `permanent` marks it failed for good, else it is retried at `nextAttempt`.
    func markAttemptFailed(id: Int64, error: String, permanent: Bool, nextAttempt: Date?, now: Date) async throws
    /// Settles a pending mail as `withdrawn` without sending it (a reminder nobody needs any more):
    /// `reason` goes to `lastError`, `now` to `nextAttemptAt`, `attempts` is unchanged. A mail that is
    /// no longer pending (sent meanwhile by another sender, already failed or withdrawn) keeps its
    /// status, and the call returns false; an unknown id throws `notFound`.
    @discardableResult
    func markWithdrawn(id: Int64, reason: String, now: Date) async throws -> Bool
    /// An outbox row by Message-ID.
    func mail(messageID: String) async throws -> OutboxMail?

    // MARK: Waiting for work

    /// Waits up to `timeout` seconds for work to appear: a run becoming runnable (enqueued, answered,
    /// released) or mail being queued, by this process or any other. Returns true when woken by such
    /// a change (look for work now), false when the timeout passed or the task was cancelled.
    ///
    /// PostgreSQL: `LISTEN signoff_work` on a connection of its own (the store sends `NOTIFY` in the
    /// transactions that make work). SQLite: a 50 ms poll of `PRAGMA data_version`, which moves on
    /// any commit by another connection, so it may also wake for changes that made no work.
    /// Listening starts with the first call: call it once with a zero timeout before the first pass
    /// so nothing made during that pass is missed. A wake-up is a hint; callers check for work.
    func waitForWork(timeout: Double) async throws -> Bool

    // MARK: Audit

    /// Appends an event to a run's chain.
    func appendEvent(runID: String, kind: String, actor: String?, data: [String: String], now: Date) async throws
    /// A run's events, oldest first.
    func events(runID: String) async throws -> [EventRecord]
    /// Recomputes a run's hash chain and reports the first broken link.
    func verifyAudit(runID: String) async throws -> AuditReport
}

extension RunStore {
    /// Default for stores that cannot be notified: sleeps for the timeout and returns false.
    public func waitForWork(timeout: Double) async throws -> Bool {
        try? await Task.sleep(for: .milliseconds(Int64(max(0, timeout) * 1000)))
        return false
    }
}

/// Opens a store from a database setting and applies pending migrations.
///
/// - `sqlite:PATH` (or `sqlite://PATH`, or a path ending in `.db`/`.sqlite`): the embedded database.
/// - `postgres://…`, `postgresql://…` or a libpq keyword string (`host=… dbname=…`), passed to
///   libpq as is, so `PGHOST`, `PGUSER`, `.pgpass` and service files keep working.
/// - `connections`: pool size for PostgreSQL (SQLite always uses one writer connection).
public func openStore(url: String, logger: Logger = Logger(label: "signoff.store"),
                      connections: Int = 4) async throws -> any RunStore {
    let target = try DatabaseTarget.parse(url)
    return try await SQLRunStore.open(target: target, logger: logger, connections: connections)
}
