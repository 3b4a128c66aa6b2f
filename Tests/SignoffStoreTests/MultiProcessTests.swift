import Foundation
@testable import SignoffStore
import Testing

/// Real processes sharing one database: pause in one, answer and finish in another; SIGKILL in the
/// middle of a superstep; two runners racing; the PostgreSQL server restarted under a runner.
@Suite(.serialized)
struct MultiProcessTests {
    static func workerArguments(_ db: String, owner: String, steps: Int, pauseAt: Int = -1, stepMilliseconds: Int = 0,
                                lease: Double = 30, batch: Int = 50, idleExit: Double = 1) -> [String] {
        ["worker", "--database", db, "--owner", owner, "--steps", String(steps), "--pause-at", String(pauseAt),
         "--step-ms", String(stepMilliseconds), "--lease", String(lease), "--batch", String(batch), "--idle-exit", String(idleExit)]
    }

    /// The supersteps of a run's checkpoints, in order.
    static func supersteps(_ store: any RunStore, _ runID: String) async throws -> [Int] {
        try await store.checkpoints(runID: runID, withData: false).map(\.superstep)
    }

    @Test(arguments: Backend.allCases)
    func aRunPausedInOneProcessIsAnsweredAndFinishedInAnother(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            let (run, _) = try await store.enqueue(NewRun(job: "gate"), now: Date())
            let first = try ChildProcess("runner A", arguments: Self.workerArguments(db.url, owner: "A", steps: 4, pauseAt: 2))
            try await first.waitForLine("paused \(run.id)") { $0 == "paused \(run.id)" }
            #expect(try await first.waitForExit() == 0)
            #expect(try await store.run(id: run.id)?.status == .waiting)
            let request = try #require(try await store.pendingRequests().first)
            let result = try await store.answer(Answer(requestID: request.id, reviewer: "ann@example.org", verdict: .approve,
                                                       response: json("true"), channel: .mail, via: "<reply@x>",
                                                       tokenHash: "token-\(request.id)", at: Date()))
            #expect(result.decided)
            let second = try ChildProcess("runner B", arguments: Self.workerArguments(db.url, owner: "B", steps: 4, pauseAt: 2))
            try await second.waitForLine("finished \(run.id)") { $0 == "finished \(run.id)" }
            #expect(try await second.waitForExit() == 0)
            #expect(second.output.contains("claimed \(run.id) 2"))
            let done = try #require(try await store.run(id: run.id))
            #expect(done.status == .succeeded)
            #expect(done.output == json(#"{"steps":4,"resumed_from":2}"#))
            #expect(try await Self.supersteps(store, run.id) == [1, 2, 3, 4])
            #expect(try await store.request(id: request.id)?.deliveredAt != nil)
            #expect(try await store.verifyAudit(runID: run.id).isIntact)
        }
    }

    /// A file path nobody has created yet (the worker's hold and start signals).
    static func signalFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("signoff-signal-\(UUID().uuidString)").path
    }

    @Test(arguments: Backend.allCases)
    func aRunnerKilledMidSuperstepLosesNothingAndTheRunFinishesAfterItsLeaseExpires(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            let (run, _) = try await store.enqueue(NewRun(job: "slow"), now: Date())
            // The victim blocks inside superstep 3 (heartbeating, so its lease never lapses on a slow
            // machine) until it is killed: the kill lands mid-superstep however late the test gets to it.
            let victim = try ChildProcess("runner A", arguments: Self.workerArguments(db.url, owner: "A", steps: 6, pauseAt: 4,
                                                                                      lease: 4) + ["--hold-at", "3", "--hold-file", Self.signalFile()])
            try await victim.waitForLine("holding \(run.id) 3") { $0 == "holding \(run.id) 3" }
            victim.kill()
            _ = try await victim.waitForExit()
            #expect(victim.process.endedBySignal)
            #expect(try await Self.supersteps(store, run.id) == [1, 2], "superstep 3 began but was never checkpointed")
            let orphan = try #require(try await store.run(id: run.id))
            #expect(orphan.status == .running)
            #expect(orphan.leaseOwner == "A")
            let expiry = try #require(orphan.leaseExpiresAt)

            let rescuer = try ChildProcess("runner B", arguments: Self.workerArguments(db.url, owner: "B", steps: 6, pauseAt: 4,
                                                                                       stepMilliseconds: 50, lease: 30, idleExit: 30))
            try await rescuer.waitForLine("paused \(run.id)", timeout: 60) { $0 == "paused \(run.id)" }
            #expect(rescuer.output.first { $0.hasPrefix("claimed \(run.id)") } == "claimed \(run.id) 2")
            // B took the run over only once A's lease had run out, and says whose it was.
            let takeover = try #require(try await store.events(runID: run.id).first { $0.kind == "lease_expired_reclaimed" })
            #expect(takeover.actor == "B")
            #expect(takeover.at >= expiry)
            #expect(takeover.data.contains(#""previous_owner":"A""#))
            let requests = try await store.requests(runID: run.id)
            #expect(requests.count == 1)
            let request = try #require(requests.first)
            _ = try await store.answer(Answer(requestID: request.id, reviewer: "ann@example.org", verdict: .approve,
                                              response: json("true"), channel: .mail, tokenHash: "token-\(request.id)", at: Date()))
            try await rescuer.waitForLine("finished \(run.id)", timeout: 60) { $0 == "finished \(run.id)" }
            rescuer.process.terminate() // rather than waiting out its idle time
            _ = try await rescuer.waitForExit()

            #expect(try await store.run(id: run.id)?.status == .succeeded)
            #expect(try await Self.supersteps(store, run.id) == [1, 2, 3, 4, 5, 6])
            #expect(try await store.requests(runID: run.id).count == 1)
            #expect(try await store.tokens(requestID: request.id).count == 1)
            let mail = try await TestDatabase.sql(store, "SELECT count(*) FROM outbox WHERE run_id = '\(run.id)'")
            #expect(mail.first?.first == "1")
            let kinds = try await store.events(runID: run.id).map(\.kind)
            #expect(kinds.filter { $0 == "lease_expired_reclaimed" }.count == 1)
            #expect(try await store.verifyAudit(runID: run.id).isIntact)
        }
    }

    @Test(arguments: Backend.allCases)
    func twoRunnerProcessesRacingOverAThousandRunsExecuteEachExactlyOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            let runs = try await store.enqueueMany((0..<1000).map { _ in NewRun(job: "empty") }, now: Date())
            // Both processes start claiming at the same moment, whatever their start-up time (they wait
            // for a file the test creates once both are ready); each run does one checkpointed
            // millisecond of work, as real runs do work outside the store.
            let goFile = Self.signalFile()
            defer { try? FileManager.default.removeItem(atPath: goFile) }
            let go = ["--go-file", goFile]
            let a = try ChildProcess("runner A", arguments: Self.workerArguments(db.url, owner: "A", steps: 1, stepMilliseconds: 1, batch: 25) + go)
            let b = try ChildProcess("runner B", arguments: Self.workerArguments(db.url, owner: "B", steps: 1, stepMilliseconds: 1, batch: 25) + go)
            try await a.waitForLine("ready A") { $0 == "ready A" }
            try await b.waitForLine("ready B") { $0 == "ready B" }
            #expect(FileManager.default.createFile(atPath: goFile, contents: nil))
            #expect(try await a.waitForExit(timeout: 120) == 0)
            #expect(try await b.waitForExit(timeout: 120) == 0)
            let finishedA = a.output.filter { $0.hasPrefix("finished ") }.map { String($0.dropFirst(9)) }
            let finishedB = b.output.filter { $0.hasPrefix("finished ") }.map { String($0.dropFirst(9)) }
            #expect(finishedA.count + finishedB.count == 1000)
            #expect(Set(finishedA).isDisjoint(with: finishedB))
            #expect(Set(finishedA + finishedB) == Set(runs.map(\.id)))
            #expect(!finishedA.isEmpty && !finishedB.isEmpty, "both runners should have taken part")
            #expect((a.output + b.output).allSatisfy { !$0.hasPrefix("lost") && !$0.hasPrefix("error") })
            #expect(try await store.runs(filter: RunFilter(statuses: [.succeeded], limit: 5000)).count == 1000)
            let claims = try await TestDatabase.sql(store, "SELECT count(*), count(DISTINCT run_id) FROM events WHERE kind LIKE '%claimed'")
            #expect(claims.first == ["1000", "1000"])
        }
    }

    @Test func aPostgresRestartUnderARunnerLosesNoRun() async throws {
        let cluster = try await PrivateCluster.start()
        defer { cluster.stop() }
        let store = try await openStore(url: cluster.url, logger: quietLogger, connections: 1)
        let (run, _) = try await store.enqueue(NewRun(job: "slow"), now: Date())
        // The runner holds inside superstep 3 until the server has restarted, so the restart always
        // lands while it is connected and mid-run, however slow the machine.
        let holdFile = Self.signalFile()
        defer { try? FileManager.default.removeItem(atPath: holdFile) }
        let runner = try ChildProcess("runner", arguments: Self.workerArguments(cluster.url, owner: "A", steps: 8,
                                                                                stepMilliseconds: 100, lease: 3, idleExit: 20)
                                      + ["--hold-at", "3", "--hold-file", holdFile])
        try await runner.waitForLine("holding \(run.id) 3") { $0 == "holding \(run.id) 3" }
        try cluster.restart()
        #expect(FileManager.default.createFile(atPath: holdFile, contents: nil))
        try await runner.waitForLine("finished \(run.id)", timeout: 90) { $0 == "finished \(run.id)" }
        runner.process.terminate()
        _ = try await runner.waitForExit()
        // The store's own connection broke too: it reconnects on first use.
        let done = try #require(try await store.run(id: run.id))
        #expect(done.status == .succeeded)
        let steps = try await Self.supersteps(store, run.id)
        #expect(steps == Array(1...8), "each superstep checkpointed exactly once, got \(steps)")
        // Any failed attempt was reported as a clean store error, never a crash.
        for line in runner.output where line.hasPrefix("error") {
            #expect(line.contains("connection_lost") || line.contains("connection_failed"), "unexpected: \(line)")
        }
        await store.close()
    }
}
