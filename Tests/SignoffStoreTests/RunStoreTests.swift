import Foundation
@testable import SignoffStore
import Testing

/// The shared suite: every test runs against SQLite and PostgreSQL.
struct RunStoreTests {
    // MARK: Schema

    @Test(arguments: Backend.allCases)
    func migrationsRunOnOpenAndReopeningChangesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            #expect(try await store.schemaVersion() == Migrations.latestVersion)
            let again = try await db.open()
            #expect(try await again.schemaVersion() == Migrations.latestVersion)
            let rows = try await TestDatabase.sql(store, "SELECT count(*) FROM signoff_schema_migrations")
            #expect(rows.first?.first == String(Migrations.all.count))
            await again.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func twoProcessesOpeningANewDatabaseAtOnceBothSucceed(_ backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        defer { Task { await db.drop() } }
        async let a = db.open()
        async let b = db.open()
        async let c = db.open()
        let stores = try await [a, b, c]
        for s in stores {
            #expect(try await s.schemaVersion() == Migrations.latestVersion)
            await s.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func aSchemaNewerThanTheBinaryIsAClearError(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            _ = try await TestDatabase.sql(store, "INSERT INTO signoff_schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
            do {
                let s = try await db.open()
                await s.close()
                Issue.record("opening a database with schema 999 should fail")
            } catch let error as StoreError {
                #expect(error.code == .schemaTooNew)
                #expect(error.message.contains("999"))
                #expect(error.message.contains("upgrade signoff"))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func historyViewsAnswerPlainSQL(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("v-1", reviewers: ["ann@example.org", "bob@example.org"])])
            let history = try await TestDatabase.sql(store, "SELECT run_id, job, status, pending_requests FROM run_history")
            #expect(history.count == 1)
            #expect(history.first == [run.id, "report", "waiting", "1"])
            let pending = try await TestDatabase.sql(store, "SELECT request_id, job, votes, reviewers FROM pending_requests")
            #expect(pending.first?[0] == "v-1")
            #expect(pending.first?[1] == "report")
            #expect(pending.first?[2] == "0")
            #expect(pending.first?[3]?.contains("bob@example.org") == true)
        }
    }

    // MARK: Enqueue and history

    @Test(arguments: Backend.allCases)
    func enqueueWithAUsedUniqueKeyReturnsTheExistingRun(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (first, created1) = try await store.enqueue(NewRun(job: "nightly", uniqueKey: "nightly-2026-11-21"), now: t0)
            let (second, created2) = try await store.enqueue(NewRun(job: "nightly", uniqueKey: "nightly-2026-11-21"), now: t0)
            #expect(created1)
            #expect(!created2)
            #expect(first.id == second.id)
            let (other, created3) = try await store.enqueue(NewRun(job: "nightly", uniqueKey: "nightly-2026-11-22"), now: t0)
            #expect(created3)
            #expect(other.id != first.id)
            #expect(try await store.runs(filter: RunFilter(job: "nightly")).count == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func runsFilterByJobStatusAndTime(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueue(NewRun(job: "a"), now: t0)
            _ = try await store.enqueue(NewRun(job: "b"), now: t0.addingTimeInterval(10))
            _ = try await store.enqueue(NewRun(job: "b"), now: t0.addingTimeInterval(20))
            #expect(try await store.runs(filter: RunFilter(job: "b")).count == 2)
            #expect(try await store.runs(filter: RunFilter(since: t0.addingTimeInterval(15))).count == 1)
            #expect(try await store.runs(filter: RunFilter(statuses: [.queued])).count == 3)
            #expect(try await store.runs(filter: RunFilter(statuses: [.succeeded])).isEmpty)
            let newest = try await store.runs(filter: RunFilter(limit: 1))
            #expect(newest.first?.createdAt == t0.addingTimeInterval(20))
        }
    }

    // MARK: Claims and leases

    @Test(arguments: Backend.allCases)
    func eachRunIsClaimedByOneRunnerOnly(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<10).map { NewRun(job: "j", input: json(#"{"n":\#($0)}"#)) }, now: t0)
            let a = try await store.claimRuns(owner: "a", limit: 4, leaseSeconds: 30, now: t0)
            let b = try await store.claimRuns(owner: "b", limit: 100, leaseSeconds: 30, now: t0)
            let c = try await store.claimRuns(owner: "c", limit: 100, leaseSeconds: 30, now: t0.addingTimeInterval(1))
            #expect(a.count == 4)
            #expect(b.count == 6)
            #expect(c.isEmpty)
            #expect(Set(a.map(\.run.id)).isDisjoint(with: b.map(\.run.id)))
            #expect(a.allSatisfy { $0.run.status == .running && $0.run.leaseOwner == "a" && $0.checkpoint == nil })
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentClaimsNeverHandOutARunTwice(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<200).map { _ in NewRun(job: "j") }, now: t0)
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for i in 0..<8 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let got = try await store.claimRuns(owner: "r\(i)", limit: 7, leaseSeconds: 30, now: t0)
                            if got.isEmpty { return mine }
                            mine += got.map(\.run.id)
                        }
                    }
                }
                var all: [String] = []
                for try await part in group { all += part }
                return all
            }
            #expect(ids.count == 200)
            #expect(Set(ids).count == 200)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentClaimsAtDifferentTimesEachGetOnlyRunsDueAtTheirTimeWithinTheirLimit(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let runs = try await store.enqueueMany((0..<12).map { i in NewRun(job: "j", notBefore: i % 2 == 0 ? nil : t0.addingTimeInterval(100)) },
                                                   now: t0)
            let delayed = Set(runs.enumerated().filter { $0.offset % 2 == 1 }.map(\.element.id))
            let callers: [(String, Int, Date)] = [("a", 3, t0), ("b", 3, t0), ("c", 4, t0.addingTimeInterval(200)),
                                                  ("d", 10, t0.addingTimeInterval(200))]
            let got = try await withThrowingTaskGroup(of: (String, [ClaimedRun]).self) { group in
                for (owner, limit, now) in callers {
                    // Leases long enough that none expires between the callers' times.
                    group.addTask { (owner, try await store.claimRuns(owner: owner, limit: limit, leaseSeconds: 3600, now: now)) }
                }
                var out: [String: [ClaimedRun]] = [:]
                for try await (owner, claimed) in group { out[owner] = claimed }
                return out
            }
            let all = got.values.flatMap { $0.map(\.run.id) }
            #expect(all.count == 12 && Set(all).count == 12)
            for (owner, limit, now) in callers {
                let mine = got[owner] ?? []
                #expect(mine.count <= limit)
                if now == t0 { #expect(mine.allSatisfy { !delayed.contains($0.run.id) }, "\(owner) got a run not due at its time") }
                for c in mine {
                    #expect(c.lease.owner == owner && c.lease.expiresAt == now.addingTimeInterval(3600))
                    let run = try #require(try await store.run(id: c.run.id))
                    #expect(run.leaseOwner == owner && run.startedAt == now && run.status == .running)
                    #expect(try await store.events(runID: c.run.id).last?.actor == owner)
                }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func anExpiredLeaseMakesTheRunClaimableAndItResumesFromItsLatestCheckpoint(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await store.enqueue(NewRun(job: "j"), now: t0)
            let first = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 30, now: t0).first)
            try await store.saveCheckpoint(first.lease, checkpoint: NewCheckpoint(superstep: 1, data: json(#"{"s":1}"#)), delivered: [], now: t0)
            try await store.saveCheckpoint(first.lease, checkpoint: NewCheckpoint(superstep: 2, data: json(#"{"s":2}"#)), delivered: [], now: t0)
            // Still leased: nobody else gets it.
            #expect(try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 30, now: t0.addingTimeInterval(29)).isEmpty)
            let second = try #require(try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 30, now: t0.addingTimeInterval(31)).first)
            #expect(second.run.id == run.id)
            #expect(second.checkpoint?.superstep == 2)
            #expect(second.checkpoint?.data == json(#"{"s":2}"#))
            #expect(second.lease.fence == first.lease.fence + 1)
            // The old owner is fenced off from every write.
            await #expect(throws: StoreError.self) {
                try await store.saveCheckpoint(first.lease, checkpoint: NewCheckpoint(superstep: 3, data: json("{}")), delivered: [], now: t0.addingTimeInterval(32))
            }
            do {
                try await store.finish(RunCompletion(lease: first.lease, status: .succeeded), now: t0.addingTimeInterval(32))
                Issue.record("finishing with a lost lease must fail")
            } catch let error as StoreError {
                #expect(error.code == .leaseLost)
            }
            try await store.finish(RunCompletion(lease: second.lease, status: .succeeded, output: json(#"{"ok":true}"#)), now: t0.addingTimeInterval(33))
            let done = try #require(try await store.run(id: run.id))
            #expect(done.status == .succeeded)
            #expect(done.output == json(#"{"ok":true}"#))
            #expect(done.leaseOwner == nil)
            let kinds = try await store.events(runID: run.id).map(\.kind)
            #expect(kinds == ["enqueued", "claimed", "lease_expired_reclaimed", "finished"])
        }
    }

    @Test(arguments: Backend.allCases)
    func heartbeatKeepsTheLeaseAndFailsOnceItIsLost(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueue(NewRun(job: "j"), now: t0)
            let claim = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 10, now: t0).first)
            let renewed = try await store.heartbeat(claim.lease, until: t0.addingTimeInterval(60))
            #expect(renewed.expiresAt == t0.addingTimeInterval(60))
            #expect(try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 10, now: t0.addingTimeInterval(30)).isEmpty)
            let stolen = try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 10, now: t0.addingTimeInterval(61))
            #expect(stolen.count == 1)
            do {
                _ = try await store.heartbeat(renewed, until: t0.addingTimeInterval(120))
                Issue.record("heartbeat after losing the lease must fail")
            } catch let error as StoreError {
                #expect(error.code == .leaseLost)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func finishManyFinishesLeasedRunsAndReportsLostOnes(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<5).map { _ in NewRun(job: "j") }, now: t0)
            let claims = try await store.claimRuns(owner: "a", limit: 5, leaseSeconds: 10, now: t0)
            var stale = claims[0].lease
            stale.fence += 7
            let completions = [RunCompletion(lease: stale, status: .succeeded)]
                + claims.dropFirst().map { RunCompletion(lease: $0.lease, status: .succeeded, output: json("1")) }
            let lost = try await store.finishMany(completions, now: t0.addingTimeInterval(1))
            #expect(lost == [claims[0].run.id])
            #expect(try await store.runs(filter: RunFilter(statuses: [.succeeded])).count == 4)
            #expect(try await store.run(id: claims[0].run.id)?.status == .running)
        }
    }

    @Test(arguments: Backend.allCases)
    func releaseQueuesTheRunAgain(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueue(NewRun(job: "j"), now: t0)
            let claim = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 10, now: t0).first)
            try await store.release(claim.lease, now: t0)
            let again = try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 10, now: t0)
            #expect(again.first?.run.id == claim.run.id)
        }
    }

    // MARK: Pause and answer

    @Test(arguments: Backend.allCases)
    func pauseRecordsCheckpointRequestsTokensMailAndWaitingInOneGo(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let request = makeRequest("p-1", reviewers: ["ann@example.org", "bob@example.org"], quorum: .all)
            let (run, _) = try await pausedRun(store, requests: [request])
            let stored = try #require(try await store.run(id: run.id))
            #expect(stored.status == .waiting)
            #expect(stored.leaseOwner == nil)
            #expect(stored.checkpointSequence == 1)
            #expect(try await store.latestCheckpoint(runID: run.id)?.data == json(#"{"step":1}"#))
            let r = try #require(try await store.request(id: "p-1"))
            #expect(r.status == .pending)
            #expect(r.reviewers == ["ann@example.org", "bob@example.org"])
            #expect(r.quorum == .all)
            #expect(r.requestData == json(#"{"title":"Q3 report"}"#))
            let tokens = try await store.tokens(requestID: "p-1")
            #expect(tokens.map(\.state) == [.active, .active])
            let token = try #require(try await store.tokenLookup(tokenHash: tokenHash("bob@example.org", "p-1")))
            #expect(token.reviewer == "bob@example.org")
            #expect(token.runID == run.id)
            #expect(token.messageID == "<p-1.bob@example.org@signoff>")
            let mail = try await store.dueMail(now: t0.addingTimeInterval(2), limit: 10)
            #expect(Set(mail.map(\.recipient)) == ["ann@example.org", "bob@example.org"])
            #expect(try await store.pendingRequests().map(\.id) == ["p-1"])
            let events = try await store.events(runID: run.id)
            #expect(events.map(\.kind) == ["enqueued", "claimed", "paused"])
            // The one request's details are in the paused event: the audit trail keeps them.
            let paused = try #require(events.last)
            for detail in [#""request_id":"p-1""#, #""executor_id":"review""#, #""reviewers":"ann@example.org,bob@example.org""#,
                           #""quorum":"all""#, #""status":"waiting""#, #""checkpoint_seq":"1""#] {
                #expect(paused.data.contains(detail), "paused event lacks \(detail): \(paused.data)")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func pauseWithALostLeaseWritesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await store.enqueue(NewRun(job: "j"), now: t0)
            let old = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 5, now: t0).first)
            _ = try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 5, now: t0.addingTimeInterval(6))
            do {
                _ = try await store.pause(old.lease, checkpoint: NewCheckpoint(superstep: 1, data: json("{}")),
                                          requests: [makeRequest("lost-1")], mail: [requestMail("lost-1", to: "ann@example.org", run: run.id)],
                                          delivered: [], now: t0.addingTimeInterval(7))
                Issue.record("pause with a lost lease must fail")
            } catch let error as StoreError {
                #expect(error.code == .leaseLost)
            }
            #expect(try await store.request(id: "lost-1") == nil)
            #expect(try await store.tokenLookup(tokenHash: tokenHash("ann@example.org", "lost-1")) == nil)
            #expect(try await store.dueMail(now: t0.addingTimeInterval(8), limit: 10).isEmpty)
            #expect(try await store.latestCheckpoint(runID: run.id) == nil)
            #expect(try await store.run(id: run.id)?.leaseOwner == "b")
        }
    }

    @Test(arguments: Backend.allCases)
    func anAnswerDecidesQueuesTheRunAndIsDeliveredOnTheNextClaim(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("a-1", reviewers: ["ann@example.org", "bob@example.org"])])
            let inbound = InboundRecord(dedupeKey: "<reply-1@mail.example.org>", path: "/maildir/cur/1", sender: "ann@example.org",
                                        outcome: .applied, receivedAt: t0.addingTimeInterval(100))
            let result = try await store.answer(Answer(
                requestID: "a-1", reviewer: "ann@example.org", verdict: .approve, response: json(#"{"approved":true}"#),
                reason: "looks good", channel: .mail, via: "<reply-1@mail.example.org>",
                tokenHash: tokenHash("ann@example.org", "a-1"), at: t0.addingTimeInterval(100), inbound: inbound))
            #expect(result.decided)
            #expect(result.request.status == .answered)
            #expect(result.request.answeredBy == "ann@example.org")
            #expect(result.request.answeredVia == "<reply-1@mail.example.org>")
            #expect(result.revokedReviewers == ["bob@example.org"])
            #expect(try await store.tokenLookup(tokenHash: tokenHash("ann@example.org", "a-1"))?.state == .used)
            #expect(try await store.tokenLookup(tokenHash: tokenHash("bob@example.org", "a-1"))?.state == .revoked)
            #expect(try await store.run(id: run.id)?.status == .queued)
            #expect(try await store.inboundSeen(dedupeKey: "<reply-1@mail.example.org>") == .applied)
            #expect(try await store.pendingRequests().isEmpty)

            let claim = try #require(try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 30, now: t0.addingTimeInterval(101)).first)
            #expect(claim.checkpoint?.data == json(#"{"step":1}"#))
            #expect(claim.answers == ["a-1": json(#"{"approved":true}"#)])
            try await store.saveCheckpoint(claim.lease, checkpoint: NewCheckpoint(superstep: 2, data: json(#"{"step":2}"#)),
                                           delivered: ["a-1"], now: t0.addingTimeInterval(102))
            try await store.release(claim.lease, now: t0.addingTimeInterval(103))
            let again = try #require(try await store.claimRuns(owner: "c", limit: 1, leaseSeconds: 30, now: t0.addingTimeInterval(104)).first)
            #expect(again.answers.isEmpty)
            #expect(again.checkpoint?.superstep == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func answeringADecidedRequestIsAlreadyDecidedAndChangesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("d-1", reviewers: ["ann@example.org", "bob@example.org"])])
            _ = try await store.answer(Answer(requestID: "d-1", reviewer: "ann@example.org", verdict: .approve, response: json("true"),
                                              channel: .cli, at: t0.addingTimeInterval(5)))
            let eventsBefore = try await store.events(runID: run.id).count
            do {
                _ = try await store.answer(Answer(requestID: "d-1", reviewer: "bob@example.org", verdict: .reject, response: json("false"),
                                                  reason: "no", channel: .mail, tokenHash: tokenHash("bob@example.org", "d-1"),
                                                  at: t0.addingTimeInterval(6),
                                                  inbound: InboundRecord(dedupeKey: "<late@x>", outcome: .applied)))
                Issue.record("a second decision must fail")
            } catch let error as StoreError {
                #expect(error.code == .alreadyDecided)
                #expect(error.message.contains("d-1"))
            }
            #expect(try await store.votes(requestID: "d-1").count == 1)
            #expect(try await store.request(id: "d-1")?.decision == "approve")
            #expect(try await store.events(runID: run.id).count == eventsBefore)
            #expect(try await store.inboundSeen(dedupeKey: "<late@x>") == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func simultaneousAnswersNeverProduceTwoDecisions(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let reviewers = (0..<12).map { "r\($0)@example.org" }
            let (run, _) = try await pausedRun(store, requests: [makeRequest("race-1", reviewers: reviewers)])
            let outcomes = await withTaskGroup(of: String.self) { group in
                for (i, reviewer) in reviewers.enumerated() {
                    group.addTask {
                        do {
                            let r = try await store.answer(Answer(requestID: "race-1", reviewer: reviewer,
                                                                  verdict: i % 2 == 0 ? .approve : .reject,
                                                                  response: json(#"{"by":"\#(reviewer)"}"#), reason: "x", channel: .mail,
                                                                  tokenHash: tokenHash(reviewer, "race-1"), at: t0.addingTimeInterval(10)))
                            return r.decided ? "decided" : "vote"
                        } catch let error as StoreError {
                            return error.code.rawValue
                        } catch {
                            return "other: \(error)"
                        }
                    }
                }
                var all: [String] = []
                for await o in group { all.append(o) }
                return all
            }
            #expect(outcomes.filter { $0 == "decided" }.count == 1)
            #expect(outcomes.filter { $0 == "already_decided" }.count == reviewers.count - 1)
            #expect(try await store.votes(requestID: "race-1").count == 1)
            #expect(try await store.events(runID: run.id).filter { $0.kind == "answered" }.count == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func twoOfThreeQuorumDecidesOnTheSecondApproval(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let reviewers = ["legal@example.org", "finance@example.org", "ops@example.org"]
            let (run, _) = try await pausedRun(store, requests: [makeRequest("q-1", reviewers: reviewers, quorum: .count(2))])
            let first = try await store.answer(Answer(requestID: "q-1", reviewer: reviewers[0], verdict: .approve, response: json("true"),
                                                      channel: .mail, tokenHash: tokenHash(reviewers[0], "q-1"), at: t0.addingTimeInterval(5)))
            #expect(!first.decided)
            #expect(try await store.run(id: run.id)?.status == .waiting)
            do {
                _ = try await store.answer(Answer(requestID: "q-1", reviewer: reviewers[0], verdict: .approve, response: json("true"),
                                                  channel: .cli, at: t0.addingTimeInterval(6)))
                Issue.record("a second vote by the same reviewer must fail")
            } catch let error as StoreError {
                #expect(error.code == .alreadyVoted)
            }
            let second = try await store.answer(Answer(requestID: "q-1", reviewer: reviewers[1], verdict: .approve, response: json("true"),
                                                       channel: .mail, tokenHash: tokenHash(reviewers[1], "q-1"), at: t0.addingTimeInterval(7)))
            #expect(second.decided)
            #expect(second.request.decision == "approve")
            #expect(second.votes.count == 2)
            #expect(second.revokedReviewers == [reviewers[2]])
            #expect(try await store.run(id: run.id)?.status == .queued)
        }
    }

    @Test(arguments: Backend.allCases)
    func oneRejectionDecidesARejectByDefault(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let reviewers = ["a@example.org", "b@example.org", "c@example.org"]
            _ = try await pausedRun(store, requests: [makeRequest("rj-1", reviewers: reviewers, quorum: .all)])
            let r = try await store.answer(Answer(requestID: "rj-1", reviewer: reviewers[2], verdict: .reject, response: json("false"),
                                                  reason: "numbers wrong", channel: .mail, at: t0.addingTimeInterval(5)))
            #expect(r.decided)
            #expect(r.request.decision == "reject")
            #expect(r.request.response == json("false"))
        }
    }

    @Test(arguments: Backend.allCases)
    func aUsedOrForeignTokenDecidesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await pausedRun(store, requests: [makeRequest("t-1", reviewers: ["a@example.org", "b@example.org"], quorum: .all),
                                                      makeRequest("t-2", reviewers: ["a@example.org"])])
            do {
                _ = try await store.answer(Answer(requestID: "t-1", reviewer: "a@example.org", verdict: .approve, response: json("true"),
                                                  channel: .mail, tokenHash: tokenHash("a@example.org", "t-2"), at: t0.addingTimeInterval(5)))
                Issue.record("a token of another request must not answer")
            } catch let error as StoreError {
                #expect(error.code == .invalidState)
            }
            do {
                _ = try await store.answer(Answer(requestID: "t-1", reviewer: "a@example.org", verdict: .approve, response: json("true"),
                                                  channel: .mail, tokenHash: tokenHash("a@example.org", "t-1"), at: t0.addingTimeInterval(200_000)))
                Issue.record("an expired token must not answer")
            } catch let error as StoreError {
                #expect(error.code == .invalidState)
                #expect(error.message.contains("expired"))
            }
            #expect(try await store.votes(requestID: "t-1").isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRestoredCheckpointReEmittingKnownRequestsDoesNotDuplicateThem(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let request = makeRequest("dup-1", reviewers: ["ann@example.org"])
            let (run, _) = try await pausedRun(store, requests: [request])
            // A second runner restores the same checkpoint (e.g. after a crash) and pauses again on the same request.
            _ = try await TestDatabase.sql(store, "UPDATE runs SET status = 'queued' WHERE id = '\(run.id)'")
            let claim = try #require(try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 30, now: t0.addingTimeInterval(10)).first)
            let result = try await store.pause(claim.lease, checkpoint: NewCheckpoint(superstep: 1, data: json(#"{"step":1}"#)),
                                               requests: [request], mail: [requestMail("dup-1", to: "ann@example.org", run: run.id)],
                                               delivered: [], now: t0.addingTimeInterval(11))
            #expect(result.createdRequestIDs.isEmpty)
            #expect(try await store.requests(runID: run.id).count == 1)
            #expect(try await store.tokens(requestID: "dup-1").count == 1)
            #expect(try await store.dueMail(now: t0.addingTimeInterval(12), limit: 10).count == 1)
            #expect(try await store.run(id: run.id)?.status == .waiting)
        }
    }

    // MARK: Timers, escalation, expiry

    @Test(arguments: Backend.allCases)
    func aReminderRoundIsRecordedOnceEvenWhenTwoRunnersTry(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await pausedRun(store, requests: [makeRequest("rem-1", dueAt: t0.addingTimeInterval(72 * 3600),
                                                                  remindAt: t0.addingTimeInterval(24 * 3600))])
            #expect(try await store.dueRequests(now: t0.addingTimeInterval(3600), limit: 10).isEmpty)
            let due = try await store.dueRequests(now: t0.addingTimeInterval(25 * 3600), limit: 10)
            #expect(due.map(\.id) == ["rem-1"])
            let reminder = NewMail(messageID: "<rem-1.1@signoff>", kind: .reminder, recipient: "ann@example.org", raw: json("x"), requestID: "rem-1")
            async let a = store.recordReminder(requestID: "rem-1", expectedRemindersSent: 0, nextRemindAt: t0.addingTimeInterval(48 * 3600),
                                               mail: [reminder], now: t0.addingTimeInterval(25 * 3600))
            async let b = store.recordReminder(requestID: "rem-1", expectedRemindersSent: 0, nextRemindAt: t0.addingTimeInterval(48 * 3600),
                                               mail: [reminder], now: t0.addingTimeInterval(25 * 3600))
            let results = try await [a, b]
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.request(id: "rem-1")?.remindersSent == 1)
            #expect(try await store.dueRequests(now: t0.addingTimeInterval(26 * 3600), limit: 10).isEmpty)
            #expect(try await store.mail(messageID: "<rem-1.1@signoff>")?.kind == .reminder)
        }
    }

    @Test(arguments: Backend.allCases)
    func escalationIssuesNewTokensAndInvalidatesTheOldOnes(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await pausedRun(store, requests: [makeRequest("esc-1", reviewers: ["ann@example.org"])])
            try await store.issueTokens(requestID: "esc-1", tokens: [NewToken(tokenHash: "hash-head", reviewer: "head@example.org")],
                                        revoking: ["ANN@example.org"], newDueAt: t0.addingTimeInterval(100_000),
                                        mail: [NewMail(messageID: "<esc@x>", kind: .escalation, recipient: "head@example.org", raw: json("x"))],
                                        actor: "system:timeout", now: t0.addingTimeInterval(50))
            #expect(try await store.tokenLookup(tokenHash: tokenHash("ann@example.org", "esc-1"))?.state == .revoked)
            #expect(try await store.tokenLookup(tokenHash: "hash-head")?.state == .active)
            let r = try #require(try await store.request(id: "esc-1"))
            #expect(r.reviewers == ["ann@example.org", "head@example.org"])
            #expect(r.dueAt == t0.addingTimeInterval(100_000))
            do {
                _ = try await store.answer(Answer(requestID: "esc-1", reviewer: "ann@example.org", verdict: .approve, response: json("true"),
                                                  channel: .mail, tokenHash: tokenHash("ann@example.org", "esc-1"), at: t0.addingTimeInterval(60)))
                Issue.record("a revoked token must not answer")
            } catch let error as StoreError {
                #expect(error.code == .alreadyDecided)
            }
            let ok = try await store.answer(Answer(requestID: "esc-1", reviewer: "head@example.org", verdict: .approve, response: json("true"),
                                                   channel: .mail, tokenHash: "hash-head", at: t0.addingTimeInterval(61)))
            #expect(ok.decided)
        }
    }

    @Test(arguments: Backend.allCases)
    func expiringARequestEndsTheWaitingRun(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("exp-1"), makeRequest("exp-2")])
            let r = try await store.expireRequest(requestID: "exp-1", actor: "system:timeout", reason: "no answer in 72h", now: t0.addingTimeInterval(99))
            #expect(r.status == .expired)
            #expect(try await store.request(id: "exp-2")?.status == .cancelled)
            #expect(try await store.tokenLookup(tokenHash: tokenHash("ann@example.org", "exp-1"))?.state == .revoked)
            let ended = try #require(try await store.run(id: run.id))
            #expect(ended.status == .expired)
            #expect(ended.error == "no answer in 72h")
            await #expect(throws: StoreError.self) { _ = try await store.expireRequest(requestID: "exp-1", actor: nil, reason: nil, now: t0) }
        }
    }

    // MARK: Cancel and rerun

    @Test(arguments: Backend.allCases)
    func cancelWithdrawsRequestsAndRerunStartsAttemptTwo(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("c-1")])
            do {
                _ = try await store.rerun(runID: run.id, requestedBy: nil, now: t0)
                Issue.record("a waiting run cannot be re-run")
            } catch let error as StoreError {
                #expect(error.code == .invalidState)
                #expect(error.message.contains("waiting"))
            }
            let cancelled = try await store.cancel(runID: run.id, by: "ops", reason: "wrong week", now: t0.addingTimeInterval(5))
            #expect(cancelled.status == .cancelled)
            #expect(try await store.request(id: "c-1")?.status == .cancelled)
            #expect(try await store.tokenLookup(tokenHash: tokenHash("ann@example.org", "c-1"))?.state == .revoked)
            await #expect(throws: StoreError.self) { _ = try await store.cancel(runID: run.id, by: nil, reason: nil, now: t0) }
            let again = try await store.rerun(runID: run.id, requestedBy: "ops", now: t0.addingTimeInterval(6))
            #expect(again.rerunOf == run.id)
            #expect(again.attempt == 2)
            #expect(again.status == .queued)
            #expect(again.input == run.input)
        }
    }

    // MARK: Outbox and inbound

    @Test(arguments: Backend.allCases)
    func outboxRetriesTransientFailuresAndRecordsPermanentOnes(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.enqueueMail([
                NewMail(messageID: "<m1@x>", kind: .confirmation, recipient: "a@example.org", raw: json("one")),
                NewMail(messageID: "<m2@x>", kind: .clarification, recipient: "b@example.org", raw: json("two")),
            ], now: t0)
            let due = try await store.dueMail(now: t0, limit: 10)
            #expect(due.map(\.messageID) == ["<m1@x>", "<m2@x>"])
            // Handed out: a second sender does not get them too.
            #expect(try await store.dueMail(now: t0.addingTimeInterval(1), limit: 10).isEmpty)
            try await store.markSent(id: due[0].id, at: t0.addingTimeInterval(2))
            try await store.markAttemptFailed(id: due[1].id, error: "421 try later", permanent: false,
                                              nextAttempt: t0.addingTimeInterval(60), now: t0.addingTimeInterval(2))
            #expect(try await store.dueMail(now: t0.addingTimeInterval(30), limit: 10).isEmpty)
            let retry = try await store.dueMail(now: t0.addingTimeInterval(61), limit: 10)
            #expect(retry.map(\.messageID) == ["<m2@x>"])
            #expect(retry.first?.attempts == 1)
            #expect(retry.first?.lastError == "421 try later")
            try await store.markAttemptFailed(id: retry[0].id, error: "550 no such user", permanent: true, nextAttempt: nil, now: t0.addingTimeInterval(62))
            #expect(try await store.mail(messageID: "<m2@x>")?.status == .failed)
            #expect(try await store.mail(messageID: "<m1@x>")?.status == .sent)
            #expect(try await store.mail(messageID: "<m1@x>")?.raw == json("one"))
        }
    }

    @Test(arguments: Backend.allCases)
    func aWithdrawnMailKeepsItsReasonIsNeverDueAgainAndIsNotAFailure(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.enqueueMail([
                NewMail(messageID: "<w1@x>", kind: .reminder, recipient: "a@example.org", raw: json("one")),
                NewMail(messageID: "<w2@x>", kind: .reminder, recipient: "b@example.org", raw: json("two")),
            ], now: t0)
            let due = try await store.dueMail(now: t0, limit: 10)
            try #require(due.count == 2)
            #expect(try await store.markWithdrawn(id: due[0].id, reason: "a@example.org has answered", now: t0.addingTimeInterval(2)))
            let withdrawn = try #require(try await store.mail(messageID: "<w1@x>"))
            #expect(withdrawn.status == .withdrawn)
            #expect(withdrawn.lastError == "a@example.org has answered")
            #expect(withdrawn.attempts == 0 && withdrawn.sentAt == nil)
            // Once the hold has run out only the other row is due again.
            #expect(try await store.dueMail(now: t0.addingTimeInterval(86_400), limit: 10).map(\.messageID) == ["<w2@x>"])
            // A row that is no longer pending keeps its status: withdrawing twice, or a sent row, changes nothing.
            #expect(try await !store.markWithdrawn(id: due[0].id, reason: "again", now: t0.addingTimeInterval(3)))
            #expect(try await store.mail(messageID: "<w1@x>")?.lastError == "a@example.org has answered")
            try await store.markSent(id: due[1].id, at: t0.addingTimeInterval(86_401))
            #expect(try await !store.markWithdrawn(id: due[1].id, reason: "too late", now: t0.addingTimeInterval(86_402)))
            #expect(try await store.mail(messageID: "<w2@x>")?.status == .sent)
            await #expect(throws: StoreError.self) { try await store.markWithdrawn(id: 987_654, reason: "x", now: t0) }
            // What an operator's SQL sees.
            #expect(try await TestDatabase.sql(store, "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
                    == [["sent", "1"], ["withdrawn", "1"]])
        }
    }

    @Test(arguments: Backend.allCases)
    func theInboundLogDedupesByMessageID(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let first = try await store.recordInbound(InboundRecord(dedupeKey: "<x@y>", sender: "a@example.org", outcome: .automatic, reason: "out of office"))
            let second = try await store.recordInbound(InboundRecord(dedupeKey: "<x@y>", sender: "a@example.org", outcome: .applied))
            #expect(first)
            #expect(!second)
            #expect(try await store.inboundSeen(dedupeKey: "<x@y>") == .automatic)
            #expect(try await store.inboundSeen(dedupeKey: "<never@y>") == nil)
        }
    }

    // MARK: Checkpoints and audit

    @Test(arguments: Backend.allCases)
    func checkpointsAreListedLoadedAndTheLatestIsProtected(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await store.enqueue(NewRun(job: "j"), now: t0)
            let claim = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 30, now: t0).first)
            let bytes = Data((0..<4096).map { UInt8($0 % 256) })
            let c1 = try await store.saveCheckpoint(claim.lease, checkpoint: NewCheckpoint(id: "cp-a", superstep: 1, data: bytes), delivered: [], now: t0)
            let c2 = try await store.saveCheckpoint(claim.lease, checkpoint: NewCheckpoint(id: "cp-b", superstep: 2, parentID: "cp-a", data: Data()), delivered: [], now: t0)
            #expect(c1.sequence == 1 && c2.sequence == 2)
            #expect(try await store.checkpoint(runID: run.id, id: "cp-a")?.data == bytes)
            #expect(try await store.latestCheckpoint(runID: run.id)?.parentID == "cp-a")
            let list = try await store.checkpoints(runID: run.id, withData: false)
            #expect(list.map(\.id) == ["cp-a", "cp-b"])
            #expect(list.allSatisfy { $0.data.isEmpty })
            await #expect(throws: StoreError.self) { try await store.deleteCheckpoint(runID: run.id, id: "cp-b") }
            try await store.deleteCheckpoint(runID: run.id, id: "cp-a")
            #expect(try await store.checkpoints(runID: run.id, withData: true).map(\.id) == ["cp-b"])
        }
    }

    @Test(arguments: Backend.allCases)
    func theAuditChainVerifiesAndDetectsAnEditedRow(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("au-1")])
            _ = try await store.answer(Answer(requestID: "au-1", reviewer: "ann@example.org", verdict: .reject, response: json("false"),
                                              reason: "no", channel: .mail, via: "<r@x>", tokenHash: tokenHash("ann@example.org", "au-1"),
                                              at: t0.addingTimeInterval(9)))
            let events = try await store.events(runID: run.id)
            // enqueued, claimed, request, paused, vote, answered (which records the run's return to the queue)
            #expect(events.map(\.kind) == ["enqueued", "claimed", "paused", "vote", "answered"])
            #expect(events.last?.data.contains(#""run_status":"queued""#) == true)
            #expect(events.first?.prevHash == "")
            for (a, b) in zip(events, events.dropFirst()) { #expect(b.prevHash == a.hash) }
            #expect(try await store.verifyAudit(runID: run.id).isIntact)
            // Someone flips the decision in SQL.
            _ = try await TestDatabase.sql(store, "UPDATE events SET data = replace(data, 'reject', 'approve') WHERE run_id = '\(run.id)' AND kind = 'vote'")
            let report = try await store.verifyAudit(runID: run.id)
            #expect(!report.isIntact)
            #expect(report.firstBrokenSequence == events.first { $0.kind == "vote" }?.sequence)
        }
    }

    @Test(arguments: Backend.allCases)
    func deletingTheNewestEventsIsDetected(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("au-2")])
            _ = try await TestDatabase.sql(store, "DELETE FROM events WHERE run_id = '\(run.id)' AND kind = 'paused'")
            let report = try await store.verifyAudit(runID: run.id)
            #expect(!report.isIntact)
        }
    }
}

/// Upgrading a database that already holds runs keeps every row readable and every chain intact.
struct SchemaUpgradeTests {
    @Test(arguments: Backend.allCases)
    func upgradingAVersion2DatabaseKeepsCheckpointsEventsAndTheirChains(_ backend: Backend) async throws {
        let dialect: SQLDialect = backend == .sqlite ? .sqlite : .postgres
        let fresh = try await TestDatabase.make(backend)
        defer { Task { await fresh.drop() } }
        let raw = try fresh.rawConnection("test.v2b")
        try await raw.perform { conn in
            #expect(try SQLRunStore.migrate(conn, dialect: dialect, target: "test", upTo: 2) == [1, 2])
            try conn.transaction(write: true) {
                try conn.query("""
                    INSERT INTO runs (id, job, status, input, created_at, updated_at, checkpoint_seq, event_seq, last_hash)
                    VALUES ('r1', 'j', 'waiting', '{}', 1, 1, 1, 0, '')
                    """, [])
                try conn.query("INSERT INTO checkpoints (run_id, seq, id, superstep, parent_id, data, created_at) VALUES ('r1', 1, 'cp-1', 1, NULL, $1, 1)",
                               [.blob(Data("state".utf8))])
                let (rows, head) = SQLRunStore.chain(runID: "r1", head: ChainHead(sequence: 0, hash: ""),
                                                     events: [NewEvent(kind: "enqueued", actor: nil, data: ["job": "j"])], at: Date())
                try SQLRunStore.insertEvents(conn, rows)
                try SQLRunStore.updateHeads(conn, [("r1", head)])
            }
        }
        await raw.close()
        let store = try await fresh.open()
        defer { Task { await store.close() } }
        #expect(try await store.schemaVersion() == Migrations.latestVersion)
        let checkpoint = try #require(try await store.checkpoint(id: "cp-1"))
        #expect(checkpoint.runID == "r1" && checkpoint.sequence == 1 && checkpoint.data == Data("state".utf8))
        #expect(try await store.latestCheckpoint(runID: "r1")?.id == "cp-1")
        // Appends continue the chain, and the (run_id, seq) key still refuses a second link at one position.
        try await store.appendEvent(runID: "r1", kind: "note", actor: nil, data: [:], now: Date())
        try await store.appendEvent(runID: "r1", kind: "note", actor: nil, data: [:], now: Date())
        let events = try await store.events(runID: "r1")
        #expect(events.map(\.kind) == ["enqueued", "note", "note"])
        #expect(events[2].id > events[1].id && events[1].id > events[0].id)
        #expect(try await store.verifyAudit(runID: "r1").firstBrokenSequence == nil)
        await #expect(throws: (any Error).self) {
            _ = try await TestDatabase.sql(store, "INSERT INTO events (run_id, seq, kind, data, at, prev_hash, hash) VALUES ('r1', 3, 'x', '{}', 0, '', '')")
        }
        await #expect(throws: (any Error).self) {
            _ = try await TestDatabase.sql(store, "INSERT INTO checkpoints (run_id, seq, id, superstep, data, created_at) VALUES ('r1', 2, 'cp-1', 1, '', 0)")
        }
    }
}

/// Upgrading a version 3 database: reminders recorded as failed with a `withdrawn: ` reason become
/// `withdrawn`, real failures stay failed, and the outbox keeps its ids, its keys and its due index.
struct OutboxUpgradeTests {
    @Test(arguments: Backend.allCases)
    func upgradingAVersion3DatabaseMovesWithdrawnRemindersOutOfFailed(_ backend: Backend) async throws {
        let dialect: SQLDialect = backend == .sqlite ? .sqlite : .postgres
        let fresh = try await TestDatabase.make(backend)
        defer { Task { await fresh.drop() } }
        let raw = try fresh.rawConnection("test.v3")
        // (message id, kind, status, attempts, last error) as a version 3 sender left them.
        let rows: [(String, String, String, Int, String?)] = [
            ("<pending@x>", "request", "pending", 0, nil),
            ("<sent@x>", "request", "sent", 1, nil),
            ("<bounced@x>", "request", "failed", 1, "550 5.1.1 no such user"),
            ("<withdrawn@x>", "reminder", "failed", 0, "withdrawn: ann@example.org has answered"),
            ("<gave-up@x>", "reminder", "failed", 5, "gave up after 5 attempts: withdrawn: the server said so"),
            ("<capital@x>", "reminder", "failed", 0, "Withdrawn: not the sender's text"),
            ("<deleted@x>", "confirmation", "sent", 1, nil),
        ]
        let idsBefore = try await raw.perform { conn -> [String: String] in
            #expect(try SQLRunStore.migrate(conn, dialect: dialect, target: "test", upTo: 3) == [1, 2, 3])
            try conn.transaction(write: true) {
                for (id, kind, status, attempts, error) in rows {
                    try conn.query("""
                        INSERT INTO outbox (message_id, kind, recipient, raw, status, attempts, next_attempt_at, last_error, created_at)
                        VALUES ($1, $2, 'ann@example.org', $3, $4, $5, 1000, $6, 1000)
                        """, [.text(id), .text(kind), .blob(Data("mail".utf8)), .text(status), .int(attempts), .optional(error)])
                }
                // The newest row is gone: its id must still never be handed out again.
                try conn.query("DELETE FROM outbox WHERE message_id = '<deleted@x>'", [])
            }
            return Dictionary(uniqueKeysWithValues: try conn.query("SELECT message_id, id FROM outbox", []).map { ($0.string(0) ?? "", $0.string(1) ?? "") })
        }
        await raw.close()
        #expect(idsBefore.count == 6)

        let store = try await fresh.open()
        defer { Task { await store.close() } }
        #expect(try await store.schemaVersion() == Migrations.latestVersion)
        let idsAfter = try await TestDatabase.sql(store, "SELECT message_id, id FROM outbox")
        #expect(Dictionary(uniqueKeysWithValues: idsAfter.map { ($0[0] ?? "", $0[1] ?? "") }) == idsBefore, "every row keeps its id")
        func mail(_ id: String) async throws -> OutboxMail { try #require(try await store.mail(messageID: id)) }
        let withdrawn = try await mail("<withdrawn@x>")
        #expect(withdrawn.status == .withdrawn)
        #expect(withdrawn.lastError == "ann@example.org has answered")
        #expect(withdrawn.attempts == 0 && withdrawn.raw == Data("mail".utf8))
        let bounced = try await mail("<bounced@x>")
        #expect(bounced.status == .failed && bounced.lastError == "550 5.1.1 no such user" && bounced.attempts == 1)
        #expect(try await mail("<gave-up@x>").status == .failed, "a real failure whose text merely mentions withdrawn")
        #expect(try await mail("<capital@x>").status == .failed, "only the sender's exact prefix counts")
        #expect(try await mail("<sent@x>").status == .sent)
        #expect(try await TestDatabase.sql(store, "SELECT count(*) FROM outbox WHERE status = 'failed'") == [["3"]])

        // The due index and the pending row still work; a new mail gets an id above every earlier one.
        #expect(try await store.dueMail(now: Date(timeIntervalSince1970: 2), limit: 10).map(\.messageID) == ["<pending@x>"])
        try await store.enqueueMail([NewMail(messageID: "<new@x>", kind: .reminder, recipient: "ann@example.org", raw: json("new"))],
                                    now: Date(timeIntervalSince1970: 3))
        let newID = try await mail("<new@x>").id
        #expect(newID > 7, "ids of deleted rows are not reused (got \(newID))")
        #expect(try await store.markWithdrawn(id: newID, reason: "no longer needed", now: Date(timeIntervalSince1970: 4)))
        #expect(try await mail("<new@x>").status == .withdrawn)

        // The constraints are all still there: unknown statuses and duplicate Message-IDs are refused.
        await #expect(throws: (any Error).self) {
            _ = try await TestDatabase.sql(store, "UPDATE outbox SET status = 'lost' WHERE message_id = '<sent@x>'")
        }
        await #expect(throws: (any Error).self) {
            _ = try await TestDatabase.sql(store, """
                INSERT INTO outbox (message_id, kind, recipient, raw, status, next_attempt_at, created_at)
                SELECT message_id, kind, recipient, raw, 'pending', 0, 0 FROM outbox WHERE message_id = '<sent@x>'
                """)
        }
        let index = backend == .sqlite
            ? "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'outbox_due_idx'"
            : "SELECT indexdef FROM pg_indexes WHERE tablename = 'outbox' AND indexname = 'outbox_due_idx'"
        let definition = try #require(try await TestDatabase.sql(store, index).first?.first ?? nil)
        #expect(definition.contains("next_attempt_at") && definition.contains("'pending'"), "\(definition)")
        if backend == .sqlite {
            #expect(try await TestDatabase.sql(store, "SELECT name FROM sqlite_master WHERE name LIKE 'outbox_v4%'").isEmpty)
        }
    }
}

/// Concurrent pauses and checkpoint saves (which the store runs as set-based batches): each caller
/// gets its own outcome, and one refused operation does not take the others down.
struct ConcurrentWriteTests {
    enum Outcome: Equatable, Sendable { case ok, failed(StoreError.Code) }

    @Test(arguments: Backend.allCases)
    func concurrentPausesEachRecordTheirRunAndRefusalsStayAlone(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let runs = try await store.enqueueMany((0..<40).map { _ in NewRun(job: "j") }, now: t0)
            let claimed = try await store.claimRuns(owner: "a", limit: 40, leaseSeconds: 60, now: t0)
            #expect(claimed.count == 40)
            // Run 0's lease is stale (wrong fence); run 1 reuses run 2's request id.
            let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
                for (i, c) in claimed.enumerated() {
                    group.addTask {
                        var lease = c.lease
                        if i == 0 { lease.fence += 1 }
                        let requestID = i == 1 ? "req-\(claimed[2].run.id)" : "req-\(c.run.id)"
                        do {
                            let result = try await store.pause(lease, checkpoint: NewCheckpoint(superstep: i, data: json(#"{"i":\#(i)}"#)),
                                                               requests: [makeRequest(requestID)],
                                                               mail: [requestMail(requestID, to: "ann@example.org", run: c.run.id)],
                                                               delivered: [], now: t0.addingTimeInterval(1))
                            return (i, result.createdRequestIDs == [requestID] && result.checkpointSequence == 1 ? .ok : .failed(.corrupt))
                        } catch let error as StoreError {
                            return (i, .failed(error.code))
                        } catch {
                            return (i, .failed(.queryFailed))
                        }
                    }
                }
                var out: [Int: Outcome] = [:]
                for await (i, o) in group { out[i] = o }
                return out
            }
            #expect(outcomes[0] == .failed(.leaseLost))
            // Runs 1 and 2 race for one request id: exactly one of them gets it.
            #expect([outcomes[1], outcomes[2]].filter { $0 == .ok }.count == 1)
            #expect([outcomes[1], outcomes[2]].contains(.failed(.invalidState)))
            for i in 3..<40 { #expect(outcomes[i] == .ok, "run \(i)") }
            for (i, c) in claimed.enumerated() {
                let run = try #require(try await store.run(id: c.run.id))
                if outcomes[i] == .ok {
                    #expect(run.status == .waiting && run.checkpointSequence == 1)
                    #expect(try await store.latestCheckpoint(runID: c.run.id)?.data == json(#"{"i":\#(i)}"#))
                    #expect(try await store.events(runID: c.run.id).map(\.kind) == ["enqueued", "claimed", "paused"])
                    #expect(try await store.verifyAudit(runID: c.run.id).isIntact)
                } else {
                    #expect(run.status == .running && run.checkpointSequence == 0, "a refused pause writes nothing")
                    #expect(try await store.latestCheckpoint(runID: c.run.id) == nil)
                    #expect(try await store.events(runID: c.run.id).map(\.kind) == ["enqueued", "claimed"])
                }
            }
            #expect(try await store.pendingRequests().count == 38)
            #expect(try await store.dueMail(now: t0.addingTimeInterval(2), limit: 100).count == 38)
            #expect(runs.count == 40)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentCheckpointSavesNumberEachRunInOrderAndALostLeaseSavesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<24).map { _ in NewRun(job: "j") }, now: t0)
            let claimed = try await store.claimRuns(owner: "a", limit: 24, leaseSeconds: 60, now: t0)
            let stale = claimed[0]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in claimed.dropFirst() {
                    group.addTask {
                        for step in 1...3 {
                            let saved = try await store.saveCheckpoint(c.lease, checkpoint: NewCheckpoint(id: "\(c.run.id)-cp\(step)", superstep: step,
                                                                                                          data: json(#"{"s":\#(step)}"#)),
                                                                       delivered: [], now: t0.addingTimeInterval(Double(step)))
                            #expect(saved.sequence == step)
                        }
                    }
                }
                group.addTask {
                    var lease = stale.lease
                    lease.owner = "someone-else"
                    await #expect(throws: StoreError.self) {
                        _ = try await store.saveCheckpoint(lease, checkpoint: NewCheckpoint(superstep: 1, data: json("{}")), delivered: [], now: t0)
                    }
                }
                try await group.waitForAll()
            }
            for c in claimed.dropFirst() {
                let list = try await store.checkpoints(runID: c.run.id, withData: true)
                #expect(list.map(\.sequence) == [1, 2, 3])
                #expect(list.map(\.id) == (1...3).map { "\(c.run.id)-cp\($0)" })
                #expect(try await store.checkpoint(id: "\(c.run.id)-cp2")?.data == json(#"{"s":2}"#))
            }
            #expect(try await store.checkpoints(runID: stale.run.id, withData: false).isEmpty)
            #expect(try await store.run(id: stale.run.id)?.checkpointSequence == 0)
        }
    }
}

/// Runs paused, answered and resumed together: one claim resumes many runs, each with its own
/// latest checkpoint and its own answers; concurrent `finish` calls (batched by the store) end each
/// run at its own time, and a lost lease fails only its caller.
struct BatchedResumeAndFinishTests {
    @Test(arguments: Backend.allCases)
    func oneClaimResumesManyRunsEachWithItsOwnCheckpointAndAnswers(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<12).map { _ in NewRun(job: "j") }, now: t0)
            let claimed = try await store.claimRuns(owner: "a", limit: 12, leaseSeconds: 60, now: t0)
            #expect(claimed.count == 12)
            for (i, c) in claimed.enumerated() {
                // Run i saves i extra checkpoints before pausing, so the latest sequence differs per run.
                for s in 0..<i {
                    _ = try await store.saveCheckpoint(c.lease, checkpoint: NewCheckpoint(superstep: s, data: json(#"{"early":\#(s)}"#)),
                                                       delivered: [], now: t0)
                }
                _ = try await store.pause(c.lease, checkpoint: NewCheckpoint(superstep: 100 + i, data: json(#"{"run":\#(i)}"#)),
                                          requests: [makeRequest("q-\(c.run.id)")], mail: [], delivered: [], now: t0)
            }
            // Every run but the last is answered; the last stays waiting.
            for (i, c) in claimed.enumerated() where i < 11 {
                _ = try await store.answer(Answer(requestID: "q-\(c.run.id)", reviewer: "ann@example.org", verdict: .approve,
                                                  response: json(#"{"ok":\#(i)}"#), channel: .cli, at: t0.addingTimeInterval(Double(i))))
            }
            let resumed = try await store.claimRuns(owner: "b", limit: 20, leaseSeconds: 60, now: t0.addingTimeInterval(50))
            #expect(resumed.count == 11)
            let index = Dictionary(uniqueKeysWithValues: claimed.enumerated().map { ($0.element.run.id, $0.offset) })
            for r in resumed {
                let i = try #require(index[r.run.id])
                #expect(r.checkpoint?.sequence == i + 1)
                #expect(r.checkpoint?.data == json(#"{"run":\#(i)}"#))
                #expect(r.answers == ["q-\(r.run.id)": json(#"{"ok":\#(i)}"#)])
                #expect(r.answeredRequests.map(\.id) == ["q-\(r.run.id)"])
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentFinishesEndEachRunAtItsOwnTimeAndALostLeaseFailsAlone(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.enqueueMany((0..<30).map { _ in NewRun(job: "j") }, now: t0)
            let claimed = try await store.claimRuns(owner: "a", limit: 30, leaseSeconds: 60, now: t0)
            #expect(claimed.count == 30)
            let outcomes = await withTaskGroup(of: (Int, StoreError.Code?).self) { group in
                for (i, c) in claimed.enumerated() {
                    group.addTask {
                        var lease = c.lease
                        if i == 0 { lease.fence += 1 }
                        do {
                            try await store.finish(RunCompletion(lease: lease, status: i % 2 == 0 ? .succeeded : .failed,
                                                                 output: json(#"{"i":\#(i)}"#), error: i % 2 == 0 ? nil : "boom \(i)"),
                                                   now: t0.addingTimeInterval(Double(10 + i)))
                            return (i, nil)
                        } catch let error as StoreError {
                            return (i, error.code)
                        } catch {
                            return (i, .queryFailed)
                        }
                    }
                }
                var out: [Int: StoreError.Code?] = [:]
                for await (i, code) in group { out[i] = code }
                return out
            }
            #expect(outcomes[0] == .some(.leaseLost))
            for i in 1..<30 { #expect(outcomes[i] == .some(nil), "run \(i)") }
            for (i, c) in claimed.enumerated() {
                let run = try #require(try await store.run(id: c.run.id))
                if i == 0 {
                    #expect(run.status == .running && run.finishedAt == nil, "a lost lease finishes nothing")
                    #expect(try await store.events(runID: c.run.id).map(\.kind) == ["enqueued", "claimed"])
                    continue
                }
                #expect(run.status == (i % 2 == 0 ? .succeeded : .failed))
                #expect(run.finishedAt == t0.addingTimeInterval(Double(10 + i)))
                #expect(run.output == json(#"{"i":\#(i)}"#))
                #expect(run.error == (i % 2 == 0 ? nil : "boom \(i)"))
                #expect(try await store.events(runID: c.run.id).map(\.kind) == ["enqueued", "claimed", "finished"])
                #expect(try await store.verifyAudit(runID: c.run.id).isIntact)
            }
            // Finishing again: the lease is gone.
            await #expect(throws: StoreError.self) {
                try await store.finish(RunCompletion(lease: claimed[1].lease, status: .succeeded), now: t0.addingTimeInterval(100))
            }
        }
    }
}

/// Reviewer lists are read back exactly as written, by the fast reader or by the JSON parser.
struct ReviewerListTests {
    @Test(arguments: [[], ["ann@example.org"], ["ann@example.org", "bob@example.org", "zoë@example.org"],
                      ["with \"quote\"", "back\\slash", "tab\there", "line\nbreak"], [""], ["", "a"], ["a,b", "[c]"]])
    func aReviewerListReadsBackAsWritten(_ list: [String]) {
        #expect(SQLRunStore.parseJSONArray(SQLRunStore.jsonArray(list)) == list)
    }

    @Test func textTheFastReaderDoesNotKnowGoesToTheJSONParser() {
        #expect(SQLRunStore.parseSimpleJSONArray(#"[ "a" , "b" ]"#) == nil)
        #expect(SQLRunStore.parseJSONArray(#"[ "a" , "b" ]"#) == ["a", "b"])
        #expect(SQLRunStore.parseSimpleJSONArray(#"["a",]"#) == nil)
        #expect(SQLRunStore.parseSimpleJSONArray(#"["a""#) == nil)
        #expect(SQLRunStore.parseJSONArray("not json") == [])
        #expect(SQLRunStore.parseJSONArray(nil) == [])
    }
}

/// SQLite placeholders: `$n` becomes `?` when the parameters come in order, `?n` otherwise.
struct SQLitePlaceholderTests {
    @Test func inOrderParametersBecomeAnonymousAndOthersKeepTheirNumbers() {
        #expect(SQLiteConnection.translate("INSERT INTO t VALUES ($1,$2),($3,$4)") == "INSERT INTO t VALUES (?,?),(?,?)")
        #expect(SQLiteConnection.translate("UPDATE t SET a = $2 WHERE id = $1") == "UPDATE t SET a = ?2 WHERE id = ?1")
        #expect(SQLiteConnection.translate("SELECT $1 WHERE x = $1") == "SELECT ?1 WHERE x = ?1")
        #expect(SQLiteConnection.translate("SELECT 1") == "SELECT 1")
    }
}

/// SQLite's log is copied back into the database in the background, not by the writer's commits.
struct SQLiteCheckpointerTests {
    @Test func theWriteAheadLogIsCopiedIntoTheDatabaseInTheBackground() async throws {
        try await withStore(.sqlite) { store, db in
            let path = try DatabaseTarget.parse(db.url).location
            func size() throws -> Int { (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
            try await Task.sleep(for: .milliseconds(300))
            let before = try size()
            // About 1 MiB of runs: far below the writer's own checkpoint limit, so only the background
            // checkpointer can move it from the log into the database file.
            let input = json(#"{"text":""# + String(repeating: "x", count: 1000) + #""}"#)
            _ = try await store.enqueueMany((0..<1000).map { _ in NewRun(job: "j", input: input) }, now: t0)
            var grown = false
            for _ in 0..<50 where !grown {
                try await Task.sleep(for: .milliseconds(100))
                grown = try size() >= before + 512 * 1024
            }
            let after = try size()
            #expect(grown, "the database file stayed at \(after) bytes (\(before) before the writes)")
        }
    }
}
