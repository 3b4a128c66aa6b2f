import Foundation
import Logging
import SignoffMail
import SignoffStore

/// One import pass (`signoff import`): every message in the Maildir's `new/` and every
/// response file in the inbox's `new/` is claimed, classified, recorded and moved.
///
/// Per message: claim by rename (losing the race is normal) → `InboundClassifier` → one store
/// transaction (`answer`, or `recordInbound`) → only then `archive/` or `quarantine/` with a
/// reason file → notices to the outbox. A crash at any point is repaired by a later pass:
/// claims older than `staleClaimSeconds` are taken over and processed again, and the dedupe key
/// makes that a no-op apart from the move.
public struct ImportPass: Sendable {
    public var store: any RunStore
    /// The Maildir replies are delivered to (nil: none).
    public var maildir: Maildir?
    /// The inbox folder for response files (`new/`, `cur/`, `archive/`, `quarantine/`; nil: none).
    public var inbox: Maildir?
    public var config: InboundConfig
    public var interpreter: any ImportRequestInterpreter
    public var notices: any ImportNoticeComposer
    /// Request policies (separation of duties, delegation) applied before a decision is recorded.
    public var policy: (any ImportPolicy)?
    public var logger: Logger
    /// The clock (injected so tests never sleep).
    public var now: @Sendable () -> Date
    /// A claim older than this (by the file system's clock) is treated as left by a crashed
    /// importer and processed again.
    public var staleClaimSeconds: TimeInterval = 600
    /// Messages read and classified at the same time (token lookups overlap the parsing).
    public var concurrency = 8
    /// The most messages committed together in one store transaction (nil: 1,024 on SQLite,
    /// 256 on PostgreSQL). SQLite has one writer, and a batch rewrites the index pages its rows
    /// land on: a larger batch shares each page among more messages (at 256 a message cost
    /// about 80 µs of the writer's time, at 1,024 about 60). PostgreSQL commits several batches
    /// at once instead. A pass starts with small batches (64, then doubling) so the writer has
    /// work early, and halves them towards the end so the last commit, which nothing overlaps,
    /// is short.
    public var batchSize: Int?
    /// The most bytes of messages a batch holds in memory while it is classified (beyond that,
    /// its messages are read one at a time as they are classified): 10 MB replies must not make
    /// a batch of a thousand hold gigabytes.
    public var batchBytes = 64 << 20
    /// Batches handed to the store and not yet committed (nil: 3). PostgreSQL commits them side by
    /// side (its commits wait on round trips); SQLite's one writer takes them in turn, and having the
    /// next ones queued keeps the writer busy while the pass classifies further batches instead of
    /// waiting for each commit. Batches in flight never share a request.
    public var commitsInFlight: Int?
    /// When set, the pass adds the wall-clock time of each phase to it (benchmarks).
    public var timings: ImportTimings?

    public init(store: any RunStore, maildir: Maildir?, inbox: Maildir?, config: InboundConfig,
                interpreter: any ImportRequestInterpreter, notices: any ImportNoticeComposer = SilentNoticeComposer(),
                logger: Logger = Logger(label: "signoff.import"), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store; self.maildir = maildir; self.inbox = inbox; self.config = config
        self.interpreter = interpreter; self.notices = notices; self.logger = logger; self.now = now
    }

    /// What one pass did.
    public struct Summary: Sendable, Hashable, Codable {
        /// Messages and files processed, by outcome name.
        public var outcomes: [String: Int] = [:]
        /// Claims lost to another importer.
        public var lostRaces = 0
        /// Messages that failed with an error and stay claimed for the repair pass.
        public var errors = 0
        public var processed: Int { outcomes.values.reduce(0, +) }

        mutating func add(_ batch: BatchOutcome) {
            for (name, count) in batch.outcomes { outcomes[name, default: 0] += count }
            errors += batch.errors
        }
    }

    /// Runs one pass over both folders: claims up to `batchSize` messages, classifies them
    /// concurrently, commits them in one store transaction, then moves them; the next batch is
    /// classified while the previous one commits.
    public func run() async throws -> Summary {
        var summary = Summary()
        for (folder, isMail) in [(maildir, true), (inbox, false)] {
            guard let folder else { continue }
            try folder.create()
            var stale: [Maildir.Claimed] = []
            // File times are real time, so staleness uses the wall clock, not the injected one.
            for old in try folder.staleClaims(olderThan: staleClaimSeconds, now: Date()) {
                if let mine = try folder.reclaim(old) { stale.append(mine) }
            }
            var names = try folder.pending().filter { !$0.hasPrefix(".") }[...]
            let largest = max(1, batchSize ?? (store.backend == .postgres ? 256 : 1024))
            var claimedSoFar = 0
            /// The next batch's size: doubling from 64 up to `largest`, and at most half of what
            /// is left (so the pass ends on small batches).
            func nextSize() -> Int {
                let smallest = min(64, largest)
                let size = min(largest, max(smallest, claimedSoFar), max(smallest, (names.count + 1) / 2))
                claimedSoFar += size
                return size
            }
            // Batches being committed, with the requests they answer: a message for one of those
            // requests is classified again after that commit, so it reads the state the
            // one-by-one path would have read.
            var committing: [(task: Task<(BatchOutcome, Moves), Never>, requests: Set<String>)] = []
            // Committed batches whose files are being moved (off the commit slot, so the next
            // commit need not wait for the renames).
            var moving: [Task<BatchOutcome, Never>] = []
            let maxCommitting = max(1, commitsInFlight ?? 3)
            var deferred: [Maildir.Claimed] = []
            // Requests of batches whose commit ended after the batch staged ahead read its tokens:
            // that read may predate the commit, so its messages for those requests are deferred
            // like messages for a batch still committing.
            var settledSinceAheadRead: Set<String> = []
            // The next batch's claims (renames into cur/), made while this batch is classified.
            var claimingAhead: Task<(claims: [Maildir.Claimed], lost: Int, error: Maildir.Failure?, staged: Staged?), Never>?
            var aheadSize = 0

            /// Waits for the oldest commit, counts it, and starts moving its files.
            func settleOldest() async {
                let settled = committing.removeFirst()
                let (outcome, moves) = await settled.task.value
                summary.add(outcome)
                settledSinceAheadRead.formUnion(settled.requests)
                moving.append(Task { move(moves, in: folder) })
                while moving.count > 2 { summary.add(await moving.removeFirst().value) }
            }
            while true {
                // Claim one batch (cheap renames); losing a race is normal.
                var claims = deferred
                deferred = []
                // The size chosen when the batch claimed ahead was started, or a new one.
                let size = claimingAhead == nil ? nextSize() : aheadSize
                while claims.count < size, !stale.isEmpty { claims.append(stale.removeFirst()) }
                let claimStart = ImportTimings.now()
                var staged: Staged?
                var settledSinceStagedRead: Set<String> = []
                if let ahead = claimingAhead {
                    claimingAhead = nil
                    let made = await ahead.value
                    claims += made.claims
                    summary.lostRaces += made.lost
                    staged = made.staged
                    settledSinceStagedRead = settledSinceAheadRead
                    settledSinceAheadRead = []
                    if let error = made.error { throw error }
                }
                while claims.count < size, let name = names.popFirst() {
                    if let claimed = try folder.claim(name) { claims.append(claimed) } else { summary.lostRaces += 1 }
                }
                timings?.add("claim", since: claimStart)
                if !names.isEmpty, !claims.isEmpty {
                    aheadSize = nextSize()
                    let next = Array(names.prefix(aheadSize))
                    names = names.dropFirst(next.count)
                    // Claimed, read, and their tokens' store read started, while this batch is classified.
                    settledSinceAheadRead = []
                    claimingAhead = Task {
                        var made: [Maildir.Claimed] = []
                        var lost = 0
                        for name in next {
                            do throws(Maildir.Failure) {
                                if let claimed = try folder.claim(name) { made.append(claimed) } else { lost += 1 }
                            } catch {
                                return (made, lost, error, nil)
                            }
                        }
                        return (made, lost, nil, isMail && !made.isEmpty ? await stage(made, in: folder) : nil)
                    }
                }
                if claims.isEmpty {
                    if committing.isEmpty { break }
                    let waitStart = ImportTimings.now()
                    await settleOldest()
                    timings?.add("wait_for_commit", since: waitStart)
                    continue
                }
                let (prepared, failed) = await prepareAll(claims, in: folder, isMail: isMail, staged: staged)
                summary.errors += failed
                let busy = committing.reduce(into: settledSinceStagedRead) { $0.formUnion($1.requests) }
                var answering: Set<String> = []
                var waiting: [Int] = []
                for i in prepared.indices {
                    guard let id = prepared[i].result.requestID else { continue }
                    if busy.contains(id) || answering.contains(id) {
                        waiting.append(i)
                        continue
                    }
                    if case .answer = prepared[i].write.kind { answering.insert(id) }
                }
                var batch = prepared
                if !waiting.isEmpty {
                    for i in waiting { deferred.append(prepared[i].claimed) }
                    let skip = Set(waiting)
                    batch = prepared.indices.filter { !skip.contains($0) }.map { prepared[$0] }
                }
                if batch.isEmpty {
                    // Everything waits for a batch being committed.
                    if !committing.isEmpty {
                        await settleOldest()
                    }
                    continue
                }
                let waitStart = ImportTimings.now()
                while committing.count >= maxCommitting {
                    await settleOldest()
                }
                timings?.add("wait_for_commit", since: waitStart)
                committing.append((Task { await commitWithoutMoving(batch, in: folder, isMail: isMail) }, answering))
            }
            for task in moving { summary.add(await task.value) }
        }
        return summary
    }

    /// Classifies, records and moves one claimed message or file. Returns the outcome.
    @discardableResult
    public func process(_ claimed: Maildir.Claimed, in folder: Maildir, isMail: Bool) async throws -> InboundResult.Outcome {
        let bytes = try folder.read(claimed, limit: isMail ? config.limits.maxRawBytes + 1 : InboxResponseFile.maxBytes + 1)
        let at = now()
        let store = self.store
        let interpreter = self.interpreter
        let found = LookupCache()
        let classifier = InboundClassifier(
            config: config,
            lookup: { token in try await Self.tokenInfo(token: token, store: store, interpreter: interpreter, cache: found) },
            seen: { key in try await store.inboundSeen(dedupeKey: key) != nil })
        var result = isMail ? try await classifier.classify(bytes, now: at) : try await classifier.classifyResponseFile(bytes, now: at)
        let channel: AnswerChannel = isMail ? .mail : .file
        let via = isMail ? (result.messageID ?? result.dedupeKey) : claimed.fileName

        if result.outcome == .duplicate { return try await duplicate(claimed, in: folder, result: result) }

        let (tokenRecord, cachedRequest) = found.value
        var request = cachedRequest
        if request == nil, let id = result.requestID { request = try await store.request(id: id) }
        var mail: [NewMail] = []

        if result.outcome == .applied, let decision = result.decision, let req = request {
            let reviewer = result.sender?.address ?? ""
            let tokenReviewer = tokenRecord?.reviewer ?? reviewer
            let ruling = try await policy?.rule(on: decision, request: req, reviewer: tokenReviewer, tokenHash: result.tokenHash, via: via,
                                                inbound: inboundRecord(result, claimed: claimed, at: at), now: at) ?? .proceed
            if case .duplicate = ruling {
                return try await duplicate(claimed, in: folder, result: result)
            } else if case .handled(let outcome, let reason, let extra) = ruling {
                result.outcome = outcome
                result.reason = reason
                mail += extra
            } else if case .refuse(let reason) = ruling {
                result.outcome = .invalidValue
                result.reason = reason
                guard try await store.recordInbound(inboundRecord(result, claimed: claimed, at: at)) else {
                    return try await duplicate(claimed, in: folder, result: result)
                }
                mail += try await notices.mail(for: .clarification(request: req, reviewer: tokenReviewer, reason: reason, tokenHash: result.tokenHash,
                                                                   inReplyTo: result.messageID, subject: result.subject), now: at)
            } else if let response = interpreter.response(for: decision, request: req, by: tokenReviewer, via: via) {
                let answer = Answer(requestID: req.id, reviewer: tokenReviewer, verdict: Self.verdict(decision), response: response,
                                    reason: Self.reasonText(decision), channel: channel, via: via, tokenHash: result.tokenHash, at: at,
                                    inbound: inboundRecord(result, claimed: claimed, at: at))
                do {
                    let answered = try await store.answer(answer)
                    mail += try await notices.mail(for: .confirmation(request: answered.request, decision: decision, reviewer: tokenReviewer,
                                                                      decided: answered.decided, inReplyTo: result.messageID, subject: result.subject), now: at)
                    if Self.othersToTell(answered, except: tokenReviewer) {
                        mail += try await notices.mail(for: .decided(request: answered.request, votes: answered.votes, except: tokenReviewer), now: at)
                    }
                } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
                    // The same message imported at this moment by another task or importer?
                    if try await store.inboundSeen(dedupeKey: result.dedupeKey) != nil {
                        return try await duplicate(claimed, in: folder, result: result)
                    }
                    result.outcome = .alreadyDecided
                    result.reason = error.message
                    guard try await store.recordInbound(inboundRecord(result, claimed: claimed, at: at)) else {
                        return try await duplicate(claimed, in: folder, result: result)
                    }
                    mail += try await notices.mail(for: .alreadyDecided(request: req, reviewer: tokenReviewer, inReplyTo: result.messageID, subject: result.subject), now: at)
                }
            } else {
                result.outcome = .invalidValue
                result.reason = "\(decision.kind.uppercased()) is not accepted for request \(req.id)"
                guard try await store.recordInbound(inboundRecord(result, claimed: claimed, at: at)) else {
                    return try await duplicate(claimed, in: folder, result: result)
                }
                mail += try await notices.mail(for: .clarification(request: req, reviewer: tokenReviewer, reason: result.reason, tokenHash: result.tokenHash,
                                                                   inReplyTo: result.messageID, subject: result.subject), now: at)
            }
        } else {
            guard try await store.recordInbound(inboundRecord(result, claimed: claimed, at: at)) else {
                return try await duplicate(claimed, in: folder, result: result)
            }
            switch result.outcome {
            case .ambiguous, .invalidValue:
                if let req = request, let to = result.sender?.address {
                    mail += try await notices.mail(for: .clarification(request: req, reviewer: to, reason: result.reason, tokenHash: result.tokenHash,
                                                                       inReplyTo: result.messageID, subject: result.subject), now: at)
                }
            case .alreadyDecided:
                if let req = request, let to = result.sender?.address {
                    mail += try await notices.mail(for: .alreadyDecided(request: req, reviewer: to, inReplyTo: result.messageID, subject: result.subject), now: at)
                }
            case .bounce:
                if let original = result.bouncedMessageID, let sent = try await outboxMail(original) {
                    try await store.markAttemptFailed(id: sent.id, error: "bounced: \(result.reason)", permanent: true, nextAttempt: nil, now: at)
                    mail += try await notices.mail(for: .bounced(mail: sent, reason: result.reason), now: at)
                }
            default: break
            }
        }
        if !mail.isEmpty { try await store.enqueueMail(mail, now: at) }
        try move(claimed, in: folder, quarantine: result.outcome.quarantines, reason: "\(result.outcome.rawValue): \(result.reason)")
        logger.info("imported", metadata: ["import.outcome": "\(result.outcome.rawValue)", "request.id": "\(result.requestID ?? "-")",
                                           "mail.dedupe_key": "\(result.dedupeKey)"])
        return result.outcome
    }

    /// Recorded before (a redelivery, the same message imported concurrently, or our own crash
    /// before the move): move it where the first outcome put it; no notices.
    private func duplicate(_ claimed: Maildir.Claimed, in folder: Maildir, result: InboundResult) async throws -> InboundResult.Outcome {
        let first = try await store.inboundSeen(dedupeKey: result.dedupeKey)
        let quarantine = first.map { InboundResult.Outcome(rawValue: $0.rawValue)?.quarantines ?? false } ?? false
        try move(claimed, in: folder, quarantine: quarantine, reason: "duplicate of an earlier message (\(first?.rawValue ?? "unknown"))")
        logger.info("duplicate", metadata: ["mail.dedupe_key": "\(result.dedupeKey)"])
        return .duplicate
    }

    private func move(_ claimed: Maildir.Claimed, in folder: Maildir, quarantine: Bool, reason: String) throws {
        if quarantine { try folder.quarantine(claimed, reason: reason) } else { try folder.archive(claimed) }
    }

    func inboundRecord(_ r: InboundResult, claimed: Maildir.Claimed, at: Date) -> InboundRecord {
        InboundRecord(dedupeKey: r.dedupeKey, path: claimed.name, sender: r.sender?.address,
                      outcome: InboundOutcome(rawValue: r.outcome.rawValue), reason: r.reason, requestID: r.requestID, receivedAt: at)
    }

    func outboxMail(_ messageID: String) async throws -> OutboxMail? {
        if let m = try await store.mail(messageID: messageID) { return m }
        return try await store.mail(messageID: "<\(messageID)>")
    }

    /// Token (as read from the address) → what the classifier needs, from the store.
    static func tokenInfo(token: String, store: any RunStore, interpreter: any ImportRequestInterpreter,
                          cache: LookupCache? = nil) async throws -> InboundTokenInfo? {
        guard let record = try await store.tokenLookup(tokenHash: InboundClassifier.tokenHash(token)),
              let request = try await store.request(id: record.requestID) else { return nil }
        cache?.store(record, request)
        return tokenInfo(record: record, request: request, interpreter: interpreter)
    }

    /// What the classifier needs, from a token row and its request.
    static func tokenInfo(record: TokenRecord, request: RequestRecord, interpreter: any ImportRequestInterpreter) -> InboundTokenInfo? {
        guard let expected = interpreter.expectedResponse(for: request) else { return nil }
        let state: InboundTokenInfo.State
        switch (record.state, request.status) {
        case (.used, _): state = .used
        case (.revoked, .pending): state = .revoked
        case (.revoked, _), (.active, .answered), (.active, .cancelled): state = .decided
        case (.active, .expired): state = .revoked
        case (.active, .pending): state = .open
        }
        return InboundTokenInfo(requestID: record.requestID, runID: record.runID, reviewer: EmailAddress(record.reviewer),
                                expiresAt: record.expiresAt, state: state, expected: expected,
                                issuedMessageIDs: record.messageID.map { [MessageID.normalize($0)] + Self.reminderIDs(record, request) } ?? [])
    }

    /// The answer decided its request and some current reviewers did not vote: they get a "decided" notice.
    static func othersToTell(_ answered: AnswerResult, except: String) -> Bool {
        answered.decided && !DecidedNotices.recipients(answered.request, votes: answered.votes, except: except).isEmpty
    }

    static func verdict(_ d: Decision) -> Verdict {
        switch d {
        case .approve: return .approve
        case .reject: return .reject
        case .value, .delegate: return .value
        }
    }

    static func reasonText(_ d: Decision) -> String? {
        switch d {
        case .approve(let c): return c
        case .reject(let r): return r
        case .value(let v): return v.jsonFragment
        case .delegate(let a): return "delegate to \(a.address)"
        }
    }
}

/// The token and request the classifier's lookup found, kept for the rest of `process`.
// @unchecked Sendable: the only state is guarded by `lock`.
final class LookupCache: @unchecked Sendable {
    private let lock = NSLock()
    private var token: TokenRecord?
    private var request: RequestRecord?
    var value: (TokenRecord?, RequestRecord?) { lock.withLock { (token, request) } }
    func store(_ t: TokenRecord, _ r: RequestRecord) { lock.withLock { token = t; request = r } }
}

/// Where an import pass spent its wall-clock time, summed per phase over its batches (filled
/// when `ImportPass.timings` is set; the benchmark prints it). Phases overlap: the next batch is
/// read and classified while the previous one commits.
// @unchecked Sendable: the only state is guarded by `lock`.
public final class ImportTimings: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: [String: Double] = [:]
    private var intervals: [(String, UInt64, UInt64)] = []
    /// Every phase interval so far: the phase, and its start and end in nanoseconds of uptime.
    public var timeline: [(phase: String, start: UInt64, end: UInt64)] { lock.withLock { intervals.map { ($0.0, $0.1, $0.2) } } }

    public init() {}

    /// Seconds per phase: `claim`, `read`, `token_lookup`, `classify`, `wait_for_commit` (the
    /// pass waiting on a commit), `compose` (notices rendered before the commit), `store_commit`,
    /// `notices` (the rest, after it), `move`.
    public var snapshot: [String: Double] { lock.withLock { seconds } }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func add(_ phase: String, since start: UInt64) {
        let end = Self.now()
        let elapsed = Double(end &- start) / 1e9
        lock.withLock { seconds[phase, default: 0] += elapsed; intervals.append((phase, start, end)) }
    }
}
