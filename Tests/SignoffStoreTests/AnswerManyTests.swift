import Foundation
@testable import SignoffStore
import Testing

/// Set-based answers: a batch ends exactly where the same answers made one by one end, one
/// answer's refusal never costs the others, and concurrent single answers stay correct.
struct AnswerManyTests {
    /// Two runs waiting on four requests with different quorums (the same on every store).
    private func setUp(_ store: any RunStore) async throws -> [String] {
        let (first, _) = try await pausedRun(store, requests: [
            makeRequest("e-any", reviewers: ["a@example.org", "b@example.org"]),
            makeRequest("e-two", reviewers: ["a@example.org", "b@example.org", "c@example.org"], quorum: .count(2)),
            makeRequest("e-all", reviewers: ["a@example.org", "b@example.org"], quorum: .all),
        ])
        let (second, _) = try await pausedRun(store, requests: [makeRequest("e-other", reviewers: ["a@example.org"])])
        return [first.id, second.id]
    }

    /// Votes, refusals, decisions and later answers to decided requests, in one order.
    private static let answers: [Answer] = {
        func a(_ request: String, _ reviewer: String, _ verdict: Verdict = .approve, token: String? = nil, at: Double,
               key: String? = nil) -> Answer {
            Answer(requestID: request, reviewer: reviewer, verdict: verdict, response: json(verdict == .reject ? "false" : "true"),
                   reason: "because \"\(reviewer)\"\n", channel: .mail, via: key, tokenHash: token, at: t0.addingTimeInterval(at),
                   inbound: key.map { InboundRecord(dedupeKey: $0, sender: reviewer, outcome: .applied, receivedAt: t0.addingTimeInterval(at)) })
        }
        return [
            a("e-two", "a@example.org", token: tokenHash("a@example.org", "e-two"), at: 10),
            a("e-two", "a@example.org", at: 11),                                                          // voted already
            a("e-any", "b@example.org", .reject, token: tokenHash("b@example.org", "e-any"), at: 12, key: "<k1@x>"),
            a("e-any", "a@example.org", token: tokenHash("a@example.org", "e-any"), at: 13),               // decided by the one before
            a("e-two", "b@example.org", token: tokenHash("b@example.org", "e-two"), at: 14),               // the second approval decides
            a("e-all", "a@example.org", token: tokenHash("a@example.org", "e-other"), at: 15),             // another request's token
            a("e-all", "a@example.org", token: tokenHash("a@example.org", "e-all"), at: 200_000),          // expired
            a("nope", "a@example.org", at: 16),                                                           // no such request
            a("e-all", "a@example.org", token: "hash-unknown", at: 17),                                   // unknown token
            a("e-all", "a@example.org", token: tokenHash("a@example.org", "e-all"), at: 18),
            Answer(requestID: "e-other", reviewer: "a@example.org", verdict: .value, response: json("42"), channel: .cli,
                   at: t0.addingTimeInterval(19), inbound: InboundRecord(dedupeKey: "<k2@x>", outcome: .applied)),
            a("e-all", "b@example.org", token: tokenHash("b@example.org", "e-all"), at: 20, key: "<k1@x>"),  // a known key: row kept as is
            a("e-all", "b@example.org", at: 21),                                                          // decided
        ]
    }()

    private static func describe(_ result: Result<AnswerResult, StoreError>) -> String {
        switch result {
        case .success(let r):
            return "decided=\(r.decided) \(r.request.id) \(r.request.status.rawValue) \(r.request.decision ?? "-") by=\(r.request.answeredBy ?? "-") "
                + "via=\(r.request.answeredVia ?? "-") response=\(String(decoding: r.request.response ?? Data(), as: UTF8.self)) "
                + "votes=\(r.votes.map { "\($0.reviewer):\($0.verdict.rawValue)" }) revoked=\(r.revokedReviewers)"
        case .failure(let e):
            return "\(e.code): \(e.message)"
        }
    }

    /// What a user can read back, with run ids replaced by their position.
    private static func observe(_ store: any RunStore, runs: [String]) async throws -> [String] {
        var out: [String] = []
        for id in ["e-any", "e-two", "e-all", "e-other"] {
            let r = try #require(try await store.request(id: id))
            out.append("\(id) \(r.status.rawValue) \(r.decision ?? "-") \(r.answeredBy ?? "-") \(r.answeredVia ?? "-") \(r.answeredAt.map { millis($0) } ?? 0)")
            out.append("  votes \(try await store.votes(requestID: id).map { "\($0.reviewer):\($0.verdict.rawValue):\($0.tokenHash ?? "-"):\(millis($0.at))" })")
            out.append("  tokens \(try await store.tokens(requestID: id).map { "\($0.reviewer):\($0.state.rawValue):\($0.usedAt.map { millis($0) } ?? 0)" })")
        }
        for (i, run) in runs.enumerated() {
            out.append("run\(i) \(try #require(try await store.run(id: run)).status.rawValue)")
            // The answers' events (the pause's name ids that differ between stores).
            for e in try await store.events(runID: run) where e.kind == "vote" || e.kind == "answered" {
                out.append("  \(e.sequence) \(e.kind) \(e.actor ?? "-") \(e.data) \(millis(e.at))")
            }
            let audit = try await store.verifyAudit(runID: run)
            out.append("  audit ok=\(audit.isIntact) events=\(audit.eventCount)")
        }
        for key in ["<k1@x>", "<k2@x>"] { out.append("\(key) \(try await store.inboundSeen(dedupeKey: key)?.rawValue ?? "-")") }
        return out
    }

    @Test(arguments: Backend.allCases)
    func aBatchOfAnswersEndsExactlyAsTheSameAnswersOneByOne(_ backend: Backend) async throws {
        try await withStore(backend) { single, _ in
            try await withStore(backend) { batched, _ in
                let singleRuns = try await setUp(single)
                var one: [String] = []
                for answer in Self.answers {
                    do { one.append(Self.describe(.success(try await single.answer(answer)))) } catch let e as StoreError { one.append(Self.describe(.failure(e))) }
                }
                let batchRuns = try await setUp(batched)
                let many = try await batched.answerMany(Self.answers).map(Self.describe)
                #expect(many == one)
                // The refusals are where the scenario says they are.
                #expect(many.map { $0.components(separatedBy: ":").first ?? "" }.filter { !$0.hasPrefix("decided") } ==
                        ["already_voted", "already_decided", "invalid_state", "invalid_state", "not_found", "not_found", "already_decided"])
                let a = try await Self.observe(single, runs: singleRuns)
                let b = try await Self.observe(batched, runs: batchRuns)
                #expect(a == b)
                #expect(b.filter { $0.contains("audit ok=false") }.isEmpty)
                #expect(b.contains("run0 queued") && b.contains("run1 queued"))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentSingleAnswersDecideEachRequestOnceAndKeepEveryChain(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            var runs: [String] = []
            var requests: [String] = []
            for r in 0..<6 {
                let ids = (0..<4).map { "c\(r)-\($0)" }
                let (run, _) = try await pausedRun(store, requests: ids.map { makeRequest($0, reviewers: ["x@example.org", "y@example.org"]) })
                runs.append(run.id)
                requests += ids
            }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for (i, id) in requests.enumerated() {
                    for reviewer in ["x@example.org", "y@example.org"] {
                        group.addTask {
                            do {
                                let r = try await store.answer(Answer(requestID: id, reviewer: reviewer, verdict: .approve, response: json("true"),
                                                                      channel: .mail, tokenHash: tokenHash(reviewer, id),
                                                                      at: t0.addingTimeInterval(Double(10 + i)),
                                                                      inbound: InboundRecord(dedupeKey: "<\(id)-\(reviewer)>", outcome: .applied)))
                                return r.decided ? "decided" : "vote"
                            } catch let error as StoreError {
                                return error.code.rawValue
                            } catch {
                                return "other: \(error)"
                            }
                        }
                    }
                }
                var all: [String] = []
                for await o in group { all.append(o) }
                return all
            }
            #expect(outcomes.filter { $0 == "decided" }.count == requests.count)
            #expect(outcomes.filter { $0 == "already_decided" }.count == requests.count)
            for id in requests { #expect(try await store.votes(requestID: id).count == 1) }
            for run in runs {
                #expect(try await store.run(id: run)?.status == .queued)
                let audit = try await store.verifyAudit(runID: run)
                #expect(audit.isIntact)
                #expect(try await store.events(runID: run).filter { $0.kind == "answered" }.count == 4)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func aBounceOfUnknownMailFailsAloneAndAKnownOneIsMarkedFailed(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await pausedRun(store, requests: [makeRequest("b-1", reviewers: ["ann@example.org"])])
            let sent = try #require(try await store.mail(messageID: "<b-1.ann@example.org@signoff>"))
            let results = try await store.recordInboundBatch([
                InboundWrite(.record(InboundRecord(dedupeKey: "<bounce-1@mx>", outcome: .bounce, receivedAt: t0)), bouncedMail: (sent.id, "550 no such user")),
                InboundWrite(.record(InboundRecord(dedupeKey: "<bounce-2@mx>", outcome: .bounce, receivedAt: t0)), bouncedMail: (999_999, "550")),
                InboundWrite(.record(InboundRecord(dedupeKey: "<auto@x>", outcome: .automatic, receivedAt: t0))),
            ], now: t0.addingTimeInterval(5))
            try #require(results.count == 3)
            guard case .recorded = results[0] else { Issue.record("first: \(results[0])"); return }
            guard case .failed(let error) = results[1] else { Issue.record("second: \(results[1])"); return }
            #expect(error.code == .notFound)
            guard case .recorded = results[2] else { Issue.record("third: \(results[2])"); return }
            let mail = try #require(try await store.mail(messageID: sent.messageID))
            #expect(mail.status == .failed)
            #expect(mail.lastError == "550 no such user")
            #expect(try await store.inboundSeen(dedupeKey: "<bounce-1@mx>") == .bounce)
            #expect(try await store.inboundSeen(dedupeKey: "<bounce-2@mx>") == nil)
            #expect(try await store.inboundSeen(dedupeKey: "<auto@x>") == .automatic)
        }
    }

    @Test(arguments: Backend.allCases)
    func aWriteTheDatabaseRejectsFailsAloneAndTheRestOfTheBatchIsRecorded(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await pausedRun(store, requests: [makeRequest("w-1", reviewers: ["ann@example.org"])])
            switch backend {
            case .sqlite:
                _ = try await TestDatabase.sql(store, """
                    CREATE TRIGGER reject_bad BEFORE INSERT ON inbound WHEN NEW.sender = 'bad@example.org'
                    BEGIN SELECT RAISE(ABORT, 'rejected by test'); END
                    """)
            case .postgres:
                _ = try await TestDatabase.sql(store, """
                    CREATE FUNCTION reject_bad() RETURNS trigger LANGUAGE plpgsql AS $f$
                    BEGIN IF NEW.sender = 'bad@example.org' THEN RAISE EXCEPTION 'rejected by test'; END IF; RETURN NEW; END $f$
                    """)
                _ = try await TestDatabase.sql(store, "CREATE TRIGGER reject_bad BEFORE INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION reject_bad()")
            }
            let results = try await store.recordInboundBatch([
                InboundWrite(.answer(Answer(requestID: "w-1", reviewer: "ann@example.org", verdict: .approve, response: json("true"),
                                            channel: .mail, tokenHash: tokenHash("ann@example.org", "w-1"), at: t0.addingTimeInterval(5),
                                            inbound: InboundRecord(dedupeKey: "<ok-1@x>", sender: "ann@example.org", outcome: .applied)))),
                InboundWrite(.record(InboundRecord(dedupeKey: "<bad@x>", sender: "bad@example.org", outcome: .unmatched))),
                InboundWrite(.record(InboundRecord(dedupeKey: "<ok-2@x>", sender: "eve@example.org", outcome: .unmatched))),
            ], now: t0.addingTimeInterval(5))
            try #require(results.count == 3)
            guard case .answered(let answered) = results[0] else { Issue.record("first: \(results[0])"); return }
            #expect(answered.decided)
            guard case .failed(let error) = results[1] else { Issue.record("second: \(results[1])"); return }
            #expect(error.message.contains("rejected by test"))
            guard case .recorded = results[2] else { Issue.record("third: \(results[2])"); return }
            #expect(try await store.request(id: "w-1")?.status == .answered)
            #expect(try await store.inboundSeen(dedupeKey: "<ok-1@x>") == .applied)
            #expect(try await store.inboundSeen(dedupeKey: "<bad@x>") == nil)
            #expect(try await store.inboundSeen(dedupeKey: "<ok-2@x>") == .unmatched)
        }
    }

    @Test(arguments: Backend.allCases)
    func anImportedAnswerReturnsTheWholeRequestAndReadsItsStateFresh(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            var requests: [NewRequest] = []
            for id in ["k-1", "k-2", "k-3"] {
                var r = makeRequest(id)
                r.requestData = json(#"{"title":"Q3 report \#(id)","state":{"draft":"long text"}}"#)
                r.policy = json(#"{"reminders":2,"forbid":["requester"]}"#)
                requests.append(r)
            }
            _ = try await pausedRun(store, requests: requests)
            var stored: [RequestRecord] = []
            for id in ["k-1", "k-2", "k-3"] { stored.append(try #require(try await store.request(id: id))) }
            func write(_ i: Int, carrying request: RequestRecord?) -> InboundWrite {
                let id = "k-\(i)"
                return InboundWrite(.answer(Answer(requestID: id, reviewer: "ann@example.org", verdict: .approve, response: json("true"),
                                                   channel: .mail, tokenHash: tokenHash("ann@example.org", id), at: t0.addingTimeInterval(Double(5 + i)),
                                                   inbound: InboundRecord(dedupeKey: "<\(id)@x>", sender: "ann@example.org", outcome: .applied))),
                                    request: request)
            }
            // k-1 is decided behind the importer's back after it read the request: the stale
            // record it carries still says pending, and the store must not believe it.
            _ = try await store.answer(Answer(requestID: "k-1", reviewer: "ann@example.org", verdict: .reject, response: json("false"),
                                              channel: .cli, at: t0.addingTimeInterval(4)))
            // Every answer carries its request (the payload is not read again) …
            let carried = try await store.recordInboundBatch([write(1, carrying: stored[0]), write(2, carrying: stored[1])],
                                                             now: t0.addingTimeInterval(10))
            guard case .refused(let refusal) = carried[0] else { Issue.record("k-1: \(carried[0])"); return }
            #expect(refusal.code == .alreadyDecided)
            guard case .answered(let second) = carried[1] else { Issue.record("k-2: \(carried[1])"); return }
            #expect(second.decided)
            #expect(second.request.status == .answered)
            #expect(second.request.requestData == stored[1].requestData)
            #expect(second.request.policy == stored[1].policy)
            // … or one does not (all are read whole).
            let mixed = try await store.recordInboundBatch([write(3, carrying: nil), write(2, carrying: stored[1])],
                                                           now: t0.addingTimeInterval(11))
            guard case .answered(let third) = mixed[0] else { Issue.record("k-3: \(mixed[0])"); return }
            #expect(third.request.requestData == stored[2].requestData)
            #expect(third.request.policy == stored[2].policy)
            // What the database holds is unchanged apart from the decision.
            let after = try #require(try await store.request(id: "k-2"))
            #expect(after.requestData == stored[1].requestData)
            #expect(after.policy == stored[1].policy)
            #expect(after.decision == "approve")
        }
    }

    @Test(arguments: Backend.allCases)
    func twoImportersWithCopiesOfOneMessageRecordItOnceAndQueueOneNotice(_ backend: Backend) async throws {
        try await withStore(backend) { first, db in
            let second = try await db.open()
            if backend == .postgres {
                // Each insert into the inbound log waits, so the two transactions overlap: the second
                // reads the keys while the first has not committed its copy yet.
                _ = try await TestDatabase.sql(first, """
                    CREATE FUNCTION slow_inbound() RETURNS trigger LANGUAGE plpgsql AS $f$
                    BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $f$
                    """)
                _ = try await TestDatabase.sql(first, "CREATE TRIGGER slow_inbound BEFORE INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION slow_inbound()")
            }
            // The same ambiguous reply, delivered twice: each importer composed its own clarification.
            func copy(_ n: Int) -> [InboundWrite] {
                [InboundWrite(.record(InboundRecord(dedupeKey: "<same-reply@mail.example.org>", path: "new/copy-\(n)", sender: "ann@example.org",
                                                    outcome: .ambiguous, reason: "no decision line", receivedAt: t0)),
                              mail: InboundMail(recorded: [NewMail(messageID: "<clarify-\(n)@signoff>", kind: .clarification,
                                                                   recipient: "ann@example.org", raw: Data("Subject: which?\r\n\r\n?\r\n".utf8))]))]
            }
            async let a = first.recordInboundBatch(copy(1), now: t0)
            async let b: [InboundWriteResult] = {
                try await Task.sleep(for: .milliseconds(100))
                return try await second.recordInboundBatch(copy(2), now: t0)
            }()
            let results = try await a + b
            await second.close()
            let recorded = results.filter { if case .recorded = $0 { true } else { false } }.count
            let duplicates = results.filter { if case .duplicate = $0 { true } else { false } }.count
            #expect(recorded == 1, "\(results)")
            #expect(duplicates == 1, "\(results)")
            let notices = try await TestDatabase.sql(first, "SELECT count(*) FROM outbox WHERE kind = 'clarification'")
            #expect(notices.first?.first == "1")
        }
    }
}
