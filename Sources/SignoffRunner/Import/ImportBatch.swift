import Foundation
import Logging
import SignoffMail
import SignoffStore
import Synchronization

/// The batched import: a batch of claimed messages is read and classified concurrently and their
/// notices composed, then their inbound rows, answers and notices are committed in one store
/// transaction (`RunStore.recordInboundBatch`), and only then are the files moved. The outcomes
/// are exactly those of `ImportPass.process` one message at a time.
///
/// Notices in the decision's transaction (`InboundWrite.mail`), composed before the commit for the
/// outcome the classification expects:
/// - an answer: its confirmation, composed as deciding when the answer would decide the request on
///   its own (`likelyDecides`: quorum `any`, a value, a deciding rejection …) and as a vote
///   otherwise; when the transaction decides otherwise (the last vote of a quorum, or a vote the
///   quorum no longer needs) that confirmation is not written and the right one is queued after the
///   commit;
/// - a row alone (ambiguous / invalid value / refused by the interpreter or a policy: the
///   clarification; already decided when classified: its notice; a bounce: the owner's notice).
/// After the commit, in a second transaction (`enqueueMail`), as before: the "decided" notices
/// to reviewers who did not vote (who they are depends on the votes the transaction found, and
/// their threading on the tokens), the "already decided" notice of an answer the transaction
/// refused (it names who decided), and everything when composing before the commit failed.
extension ImportPass {
    /// One classified message, ready for the batch's transaction.
    ///
    /// A class: a batch's arrays of prepared messages are filtered, sorted and handed between
    /// tasks, and copying a struct of this size retained every field it holds each time (copies
    /// of the import's structs took about a tenth of its CPU, this one the largest share).
    /// `@unchecked Sendable`: each one is made by one prepare task and then handed on whole, one
    /// owner at a time (the pass composes its notices, then its commit task reads it); no two
    /// tasks touch it at once.
    final class Prepared: @unchecked Sendable {
        let claimed: Maildir.Claimed
        let result: InboundResult
        let request: RequestRecord?
        /// The token's reviewer (the sender when the token is unknown).
        let tokenReviewer: String
        /// The message decides: the answer is in `write`; nil otherwise.
        let decision: Decision?
        /// The interpreter refused the decision: an `invalid_value` row, clarification to the token's reviewer.
        let refusedByInterpreter: Bool
        /// A bounce of one of our mails.
        let bounced: OutboxMail?
        /// The request policy records this message itself (a delegation): it takes the one-by-one
        /// path (`process`) instead of the batch's transaction.
        let byPolicy: Bool
        var write: InboundWrite
        /// Its notices were composed before the commit (into `write.mail`).
        var composed = false

        init(claimed: Maildir.Claimed, result: InboundResult, request: RequestRecord?, tokenReviewer: String, decision: Decision? = nil,
             refusedByInterpreter: Bool = false, bounced: OutboxMail? = nil, byPolicy: Bool = false, write: InboundWrite) {
            self.claimed = claimed; self.result = result; self.request = request; self.tokenReviewer = tokenReviewer
            self.decision = decision; self.refusedByInterpreter = refusedByInterpreter; self.bounced = bounced
            self.byPolicy = byPolicy; self.write = write
        }
    }

    /// What one batch did.
    struct BatchOutcome: Sendable {
        var outcomes: [String: Int] = [:]
        var errors = 0
    }

    /// Reads and classifies one claimed message (no writes). The dedupe check happens in the
    /// batch's transaction.
    func prepare(_ claimed: Maildir.Claimed, in folder: Maildir, isMail: Bool, at: Date,
                 read: [UInt8]? = nil, prefetched: Lookups? = nil) async throws -> Prepared {
        let bytes = try read ?? folder.read(claimed, limit: isMail ? config.limits.maxRawBytes + 1 : InboxResponseFile.maxBytes + 1)
        let store = self.store
        let interpreter = self.interpreter
        let found = LookupCache()
        let classifier = InboundClassifier(
            config: config,
            lookup: { token in
                let hash = InboundClassifier.tokenHash(token)
                // (the batch's token read runs while the messages are parsed; it is awaited here)
                if let prefetched = await prefetched?.chunk(holding: hash) {
                    guard let match = prefetched.found[hash] else { return nil }
                    found.store(match.token, match.request)
                    return Self.tokenInfo(record: match.token, request: match.request, interpreter: interpreter)
                }
                return try await Self.tokenInfo(token: token, store: store, interpreter: interpreter, cache: found)
            })
        var result = isMail ? try await classifier.classify(bytes, now: at) : try await classifier.classifyResponseFile(bytes, now: at)
        let (tokenRecord, cachedRequest) = found.value
        var request = cachedRequest
        if request == nil, let id = result.requestID { request = try await store.request(id: id) }
        let tokenReviewer = tokenRecord?.reviewer ?? result.sender?.address ?? ""

        if result.outcome == .applied, let decision = result.decision, let req = request {
            let via = isMail ? (result.messageID ?? result.dedupeKey) : claimed.fileName
            if let policy {
                if let reason = try await policy.refusal(for: decision, request: req, reviewer: tokenReviewer) {
                    result.outcome = .invalidValue
                    result.reason = reason
                    return Prepared(claimed: claimed, result: result, request: req, tokenReviewer: tokenReviewer, refusedByInterpreter: true,
                                    write: InboundWrite(.record(inboundRecord(result, claimed: claimed, at: at))))
                }
                if policy.acts(on: decision) {
                    return Prepared(claimed: claimed, result: result, request: req, tokenReviewer: tokenReviewer, decision: decision,
                                    byPolicy: true, write: InboundWrite(.record(inboundRecord(result, claimed: claimed, at: at))))
                }
            }
            if let response = interpreter.response(for: decision, request: req, by: tokenReviewer, via: via) {
                let answer = Answer(requestID: req.id, reviewer: tokenReviewer, verdict: Self.verdict(decision), response: response,
                                    reason: Self.reasonText(decision), channel: isMail ? .mail : .file, via: via, tokenHash: result.tokenHash,
                                    at: at, inbound: inboundRecord(result, claimed: claimed, at: at))
                return Prepared(claimed: claimed, result: result, request: req, tokenReviewer: tokenReviewer, decision: decision,
                                write: InboundWrite(.answer(answer), request: req))
            }
            result.outcome = .invalidValue
            result.reason = "\(decision.kind.uppercased()) is not accepted for request \(req.id)"
            return Prepared(claimed: claimed, result: result, request: req, tokenReviewer: tokenReviewer, refusedByInterpreter: true,
                            write: InboundWrite(.record(inboundRecord(result, claimed: claimed, at: at))))
        }
        var bounced: OutboxMail?
        var failedMail: (id: Int64, error: String)?
        if result.outcome == .bounce, let original = result.bouncedMessageID, let sent = try await outboxMail(original) {
            bounced = sent
            failedMail = (sent.id, "bounced: \(result.reason)")
        }
        return Prepared(claimed: claimed, result: result, request: request, tokenReviewer: tokenReviewer, bounced: bounced,
                        write: InboundWrite(.record(inboundRecord(result, claimed: claimed, at: at)), bouncedMail: failedMail))
    }

    /// One chunk's token rows with their requests and runs (a hash the chunk asked and did not
    /// find has no token).
    struct Prefetched: Sendable {
        var found: [String: TokenMatch]
    }

    /// A batch's token reads, in chunks queued on the store one after the other in the order of
    /// the claims (the order the messages are classified in): a message waits only for the chunk
    /// that holds its token, so classifying starts once the first chunk is read.
    struct Lookups: Sendable {
        /// The chunk each hash was asked in.
        var chunkOf: [String: Int]
        var chunks: [Task<Prefetched?, Never>]

        /// The read of the chunk that asked `hash`; nil when no chunk did or its read failed (the
        /// message's token is then looked up on its own).
        func chunk(holding hash: String) async -> Prefetched? {
            guard let i = chunkOf[hash] else { return nil }
            return await chunks[i].value
        }

        /// Every token found, in all chunks.
        func found() async -> [TokenMatch] {
            var all: [TokenMatch] = []
            for chunk in chunks { if let read = await chunk.value { all += read.found.values } }
            return all
        }
    }

    /// The most chunks a batch's token read is cut into, and the fewest tokens in a chunk.
    static let lookupChunks = 4, lookupChunkMinimum = 64

    /// Messages read ahead and the token read for them, already started.
    struct Staged: Sendable {
        var contents: [Maildir.Claimed: [UInt8]]
        var lookups: Lookups
    }

    /// Reads `claims` and the tokens their headers name (in parallel, a chunk per core), then
    /// starts the store reads of the tokens (`Lookups`: up to four, one after the other); they run
    /// while the messages are classified (and, for a batch staged ahead, while the previous batch is).
    func stage(_ claims: [Maildir.Claimed], in folder: Maildir) async -> Staged {
        let readStart = ImportTimings.now()
        var hashesByPart: [(start: Int, hashes: [String])] = []
        var contents: [Maildir.Claimed: [UInt8]] = [:]
        let config = self.config
        let width = max(1, min(ProcessInfo.processInfo.activeProcessorCount, (claims.count + 31) / 32))
        let chunk = max(1, (claims.count + width - 1) / width)
        // Each chunk keeps at most its share of `batchBytes`; past it, a message is read for its
        // token and dropped (read again when it is classified).
        let budget = max(1, batchBytes / width)
        await withTaskGroup(of: (Int, [(Maildir.Claimed, [UInt8]?, String?)]).self) { group in
            for start in stride(from: 0, to: claims.count, by: chunk) {
                let part = Array(claims[start..<min(claims.count, start + chunk)])
                group.addTask {
                    var kept = 0
                    return (start, part.map { claimed -> (Maildir.Claimed, [UInt8]?, String?) in
                        guard let bytes = try? folder.read(claimed, limit: config.limits.maxRawBytes + 1) else { return (claimed, nil, nil) }
                        let keep = kept + bytes.count <= budget
                        if keep { kept += bytes.count }
                        guard bytes.count <= config.limits.maxRawBytes,
                              let token = Authenticity.token(in: MIMEMessage.parseHeaders(bytes[...]), replyAddress: config.replyAddress) else {
                            return (claimed, keep ? bytes : nil, nil)
                        }
                        return (claimed, keep ? bytes : nil, InboundClassifier.tokenHash(token))
                    })
                }
            }
            for await (start, read) in group {
                var hashes: [String] = []
                for (claimed, bytes, hash) in read {
                    if let bytes { contents[claimed] = bytes }
                    if let hash { hashes.append(hash) }
                }
                hashesByPart.append((start, hashes))
            }
        }
        timings?.add("read", since: readStart)
        // The hashes in claim order, each once, cut into chunks read one after the other.
        var chunkOf: [String: Int] = [:]
        var ordered: [String] = []
        for part in hashesByPart.sorted(by: { $0.start < $1.start }) {
            for hash in part.hashes where chunkOf[hash] == nil {
                chunkOf[hash] = 0
                ordered.append(hash)
            }
        }
        let size = max(Self.lookupChunkMinimum, (ordered.count + Self.lookupChunks - 1) / Self.lookupChunks)
        let store = self.store
        let timings = self.timings
        var chunks: [Task<Prefetched?, Never>] = []
        for (i, start) in stride(from: 0, to: ordered.count, by: size).enumerated() {
            let asked = Array(ordered[start..<min(ordered.count, start + size)])
            for hash in asked { chunkOf[hash] = i }
            let before = chunks.last
            chunks.append(Task<Prefetched?, Never> {
                _ = await before?.value
                let lookupStart = ImportTimings.now()
                defer { timings?.add("token_lookup", since: lookupStart) }
                guard let found = try? await store.tokenLookups(tokenHashes: asked) else { return nil }
                return Prefetched(found: found)
            })
        }
        return Staged(contents: contents, lookups: Lookups(chunkOf: chunkOf, chunks: chunks))
    }

    /// Classifies `claims` concurrently (`concurrency` at a time). With `staged`, the messages it
    /// read are not read again and its token reads are used (a message it does not cover is read,
    /// and its token looked up, on its own). A message that fails stays claimed for the repair
    /// pass and is counted as an error.
    func prepareAll(_ claims: [Maildir.Claimed], in folder: Maildir, isMail: Bool, staged: Staged? = nil) async -> ([Prepared], Int) {
        let at = now()
        var slots = [Prepared?](repeating: nil, count: claims.count)
        var errors = 0
        var contents: [Maildir.Claimed: [UInt8]] = [:]
        var lookupTask: Lookups?
        if isMail {
            let s: Staged
            if let staged { s = staged } else { s = await stage(claims, in: folder) }
            contents = s.contents
            lookupTask = s.lookups
        }
        let lookups = lookupTask
        let classifyStart = ImportTimings.now()
        defer { timings?.add("classify", since: classifyStart) }
        // `concurrency` workers, each taking the next message in turn (a task per message cost
        // more than some messages' classification).
        let next = Turns()
        let read = contents
        await withTaskGroup(of: [(Int, Prepared?)].self) { group in
            for _ in 0..<max(1, min(concurrency, claims.count)) {
                group.addTask {
                    var done: [(Int, Prepared?)] = []
                    while true {
                        let index = next.take()
                        guard index < claims.count else { return done }
                        // Classifying rarely suspends: let the next batch's reads and the moves
                        // (tasks on the same threads) in now and then.
                        if done.count % 16 == 15 { await Task.yield() }
                        let claimed = claims[index]
                        do {
                            done.append((index, try await prepare(claimed, in: folder, isMail: isMail, at: at, read: read[claimed],
                                                                  prefetched: lookups)))
                        } catch {
                            logger.error("import failed; the message stays claimed and is retried by a later pass",
                                         metadata: ["import.path": "\(claimed.file)", "error": "\(error)"])
                            done.append((index, nil))
                        }
                    }
                }
            }
            for await part in group {
                for (index, prepared) in part {
                    if let prepared { slots[index] = prepared } else { errors += 1 }
                }
            }
        }
        let prepared = slots.compactMap { $0 }
        let composeStart = ImportTimings.now()
        var runs: [String: RunRecord] = [:]
        for match in await lookups?.found() ?? [] { if let run = match.run { runs[run.id] = run } }
        await composeNotices(prepared, runs: runs, at: at)
        timings?.add("compose", since: composeStart)
        return (prepared, errors)
    }

    /// The answer decides its request when no other vote was recorded before it (the likely case
    /// for the notice composed before the commit; the transaction tells for sure).
    static func likelyDecides(_ verdict: Verdict, request: RequestRecord) -> Bool {
        if verdict == .value { return true }
        let needed = request.quorum.approvalsNeeded(reviewers: request.reviewers.count)
        if verdict == .approve { return needed <= 1 }
        if request.rejectOn == .any || needed <= 1 { return true }
        return request.reviewers.count > 0 && request.reviewers.count - 1 < needed
    }

    /// The notice each message gets if its write goes as expected, composed now (off the store's
    /// writer) for the batch at once and carried in `write.mail`. On failure nothing is composed
    /// and the notices are composed after the commit.
    func composeNotices(_ prepared: [Prepared], runs: [String: RunRecord] = [:], at: Date) async {
        var notices: [ImportNotice] = []
        var owners: [(index: Int, answered: Bool, decided: Bool)] = []
        for (i, p) in prepared.enumerated() where !p.byPolicy {
            let r = p.result
            if case .answer(let answer) = p.write.kind, let decision = p.decision, let req = p.request {
                let decided = Self.likelyDecides(answer.verdict, request: req)
                notices.append(.confirmation(request: req, decision: decision, reviewer: p.tokenReviewer, decided: decided,
                                             inReplyTo: r.messageID, subject: r.subject))
                owners.append((i, true, decided))
            } else if let notice = Self.recordedNotice(p) {
                notices.append(notice)
                owners.append((i, false, false))
            } else {
                prepared[i].composed = true  // nothing to tell
            }
        }
        guard !notices.isEmpty else { return }
        do {
            let mails = try await self.notices.mail(for: notices, runs: runs, now: at)
            for (owner, mail) in zip(owners, mails) {
                prepared[owner.index].write.mail = owner.answered ? InboundMail(answered: mail, answeredDecided: owner.decided)
                                                                  : InboundMail(recorded: mail)
                prepared[owner.index].composed = true
            }
        } catch {
            logger.warning("import notices could not be composed before the commit; they are composed after it", metadata: ["error": "\(error)"])
            for owner in owners { prepared[owner.index].composed = false; prepared[owner.index].write.mail = InboundMail() }
        }
    }

    /// The notice of a message whose inbound row alone is recorded, if any.
    static func recordedNotice(_ p: Prepared) -> ImportNotice? {
        let r = p.result
        if p.refusedByInterpreter {
            guard let req = p.request else { return nil }
            return .clarification(request: req, reviewer: p.tokenReviewer, reason: r.reason, tokenHash: r.tokenHash,
                                  inReplyTo: r.messageID, subject: r.subject)
        }
        switch r.outcome {
        case .ambiguous, .invalidValue:
            guard let req = p.request, let to = r.sender?.address else { return nil }
            return .clarification(request: req, reviewer: to, reason: r.reason, tokenHash: r.tokenHash, inReplyTo: r.messageID, subject: r.subject)
        case .alreadyDecided:
            guard let req = p.request, let to = r.sender?.address else { return nil }
            return .alreadyDecided(request: req, reviewer: to, inReplyTo: r.messageID, subject: r.subject)
        case .bounce:
            guard let sent = p.bounced else { return nil }
            return .bounced(mail: sent, reason: r.reason)
        default:
            return nil
        }
    }

    /// The files of a committed batch, to move: each message with its outcome, whether it goes
    /// to quarantine and the reason (nil: it failed and stays claimed).
    struct Moves: Sendable {
        struct Entry: Sendable {
            var claimed: Maildir.Claimed
            var outcome: InboundResult.Outcome
            var quarantine: Bool
            var reason: String
            var requestID: String?
            var dedupeKey: String

            init(_ p: Prepared, _ outcome: InboundResult.Outcome, _ quarantine: Bool, _ reason: String) {
                claimed = p.claimed; self.outcome = outcome; self.quarantine = quarantine; self.reason = reason
                requestID = p.result.requestID; dedupeKey = p.result.dedupeKey
            }
        }
        var entries: [Entry?] = []
    }

    /// Commits a prepared batch (with its notices) in one transaction; the files it returns
    /// are moved by `move(_:in:)` — after this returns, never before.
    func commitWithoutMoving(_ prepared: [Prepared], in folder: Maildir, isMail: Bool) async -> (BatchOutcome, Moves) {
        var outcome = BatchOutcome()
        // Messages a request policy acts on (delegations, rare) go one by one, each in its own transaction.
        for p in prepared where p.byPolicy {
            do {
                let o = try await process(p.claimed, in: folder, isMail: isMail)
                outcome.outcomes[o.rawValue, default: 0] += 1
            } catch {
                logger.error("import failed; the message stays claimed and is retried by a later pass",
                             metadata: ["import.path": "\(p.claimed.file)", "error": "\(error)"])
                outcome.errors += 1
            }
        }
        let batch = prepared.contains(where: \.byPolicy) ? prepared.filter { !$0.byPolicy } : prepared
        guard !batch.isEmpty else { return (outcome, Moves()) }
        // Answers to the same request keep their order; across requests, rows are locked in
        // request order so two importers' batches cannot deadlock on PostgreSQL.
        let order = batch.indices.sorted { a, b in
            let ra = batch[a].result.requestID ?? "", rb = batch[b].result.requestID ?? ""
            return ra != rb ? ra < rb : a < b
        }
        let at = now()
        let results: [InboundWriteResult]
        let storeStart = ImportTimings.now()
        do {
            let sorted = try await store.recordInboundBatch(order.map { batch[$0].write }, now: at)
            var byIndex = [InboundWriteResult?](repeating: nil, count: batch.count)
            for (position, index) in order.enumerated() { byIndex[index] = sorted[position] }
            results = byIndex.map { $0! }
        } catch {
            // The whole transaction failed (a lost connection, a deadlock): process the batch's
            // messages one at a time instead, each in its own transaction.
            logger.warning("import batch failed; processing its messages one by one", metadata: ["error": "\(error)"])
            for p in batch {
                do {
                    let o = try await process(p.claimed, in: folder, isMail: isMail)
                    outcome.outcomes[o.rawValue, default: 0] += 1
                } catch {
                    logger.error("import failed; the message stays claimed and is retried by a later pass",
                                 metadata: ["import.path": "\(p.claimed.file)", "error": "\(error)"])
                    outcome.errors += 1
                }
            }
            return (outcome, Moves())
        }

        timings?.add("store_commit", since: storeStart)
        let noticesStart = ImportTimings.now()
        // Notices the transaction did not write (see the type's documentation).
        var later: [ImportNotice] = []
        var final: [Moves.Entry?] = []
        final.reserveCapacity(batch.count)
        for (p, written) in zip(batch, results) {
            var r = p.result
            switch written {
            case .failed(let error):
                logger.error("import failed; the message stays claimed and is retried by a later pass",
                             metadata: ["import.path": "\(p.claimed.file)", "error": "\(error)"])
                final.append(nil)
                continue
            case .duplicate(let first):
                let quarantine = first.map { InboundResult.Outcome(rawValue: $0.rawValue)?.quarantines ?? false } ?? false
                final.append(Moves.Entry(p, .duplicate, quarantine, "duplicate of an earlier message (\(first?.rawValue ?? "unknown"))"))
                continue
            case .answered(let answered):
                if let decision = p.decision {
                    if !p.composed || answered.decided != p.write.mail.answeredDecided {
                        later.append(.confirmation(request: answered.request, decision: decision, reviewer: p.tokenReviewer,
                                                   decided: answered.decided, inReplyTo: r.messageID, subject: r.subject))
                    }
                    if Self.othersToTell(answered, except: p.tokenReviewer) {
                        later.append(.decided(request: answered.request, votes: answered.votes, except: p.tokenReviewer))
                    }
                }
            case .refused(let error):
                r.outcome = .alreadyDecided
                r.reason = error.message
                if let req = p.request {
                    later.append(.alreadyDecided(request: req, reviewer: p.tokenReviewer, inReplyTo: r.messageID, subject: r.subject))
                }
            case .recorded:
                if !p.composed, let notice = Self.recordedNotice(p) { later.append(notice) }
            }
            final.append(Moves.Entry(p, r.outcome, r.outcome.quarantines, "\(r.outcome.rawValue): \(r.reason)"))
        }
        if !later.isEmpty {
            do {
                let mail = try await notices.mail(for: later, now: at).flatMap { $0 }
                if !mail.isEmpty { try await store.enqueueMail(mail, now: at) }
            } catch {
                // Recorded but not moved: the repair pass moves them (as duplicates) later.
                logger.error("import notices failed; the batch stays claimed and is moved by a later pass", metadata: ["error": "\(error)"])
                outcome.errors += batch.count
                return (outcome, Moves())
            }
        }

        timings?.add("notices", since: noticesStart)
        return (outcome, Moves(entries: final))
    }

    /// Moves a committed batch's files (only after its commit: that is the durability contract).
    func move(_ moves: Moves, in folder: Maildir) -> BatchOutcome {
        var outcome = BatchOutcome()
        let moveStart = ImportTimings.now()
        defer { timings?.add("move", since: moveStart) }
        for entry in moves.entries {
            guard let e = entry else { outcome.errors += 1; continue }
            do {
                if e.quarantine { try folder.quarantine(e.claimed, reason: e.reason) } else { try folder.archive(e.claimed) }
                outcome.outcomes[e.outcome.rawValue, default: 0] += 1
                logger.info("imported", metadata: ["import.outcome": "\(e.outcome.rawValue)", "request.id": "\(e.requestID ?? "-")",
                                                   "mail.dedupe_key": "\(e.dedupeKey)"])
            } catch {
                logger.error("import move failed; the message stays claimed and is moved by a later pass",
                             metadata: ["import.path": "\(e.claimed.file)", "error": "\(error)"])
                outcome.errors += 1
            }
        }
        return outcome
    }
}

/// Hands out 0, 1, 2 … to concurrent workers, each number once.
final class Turns: Sendable {
    private let counter = Atomic<Int>(0)
    func take() -> Int { counter.add(1, ordering: .relaxed).oldValue }
}
