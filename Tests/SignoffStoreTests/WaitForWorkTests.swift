import Foundation
@testable import SignoffStore
import Testing

/// `waitForWork`: a worker blocked on the store wakes as soon as another connection makes work,
/// and otherwise waits out its timeout.
struct WaitForWorkTests {
    static func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start).seconds
    }

    @Test(arguments: Backend.allCases)
    func aWaitingWorkerWakesWhenAnotherConnectionEnqueuesARun(_ backend: Backend) async throws {
        try await withStore(backend) { worker, db in
            let other = try await db.open(connections: 1)
            _ = try await worker.waitForWork(timeout: 0) // starts listening
            let start = ContinuousClock.now
            async let woke = worker.waitForWork(timeout: 30)
            try await Task.sleep(for: .milliseconds(300))
            _ = try await other.enqueue(NewRun(job: "nightly"), now: Date())
            #expect(try await woke)
            #expect(Self.seconds(since: start) < 15, "woke \(Self.seconds(since: start))s after the wait began")
            await other.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func anAnswerThatQueuesARunWakesAWaitingWorker(_ backend: Backend) async throws {
        try await withStore(backend) { worker, db in
            let other = try await db.open(connections: 1)
            let (run, _) = try await worker.enqueue(NewRun(job: "gate"), now: Date())
            let claim = try #require(try await worker.claimRuns(owner: "w", limit: 1, leaseSeconds: 60, now: Date()).first)
            _ = try await worker.pause(claim.lease, checkpoint: nil, requests: [makeRequest("\(run.id)-q")], mail: [],
                                       delivered: [], now: Date())
            _ = try await worker.waitForWork(timeout: 0)
            #expect(try await worker.waitForWork(timeout: 0.2) == false, "nothing changed since listening began")
            async let woke = worker.waitForWork(timeout: 30)
            try await Task.sleep(for: .milliseconds(300))
            let start = ContinuousClock.now
            _ = try await other.answer(Answer(requestID: "\(run.id)-q", reviewer: "ann@example.org", verdict: .approve,
                                              response: json("true"), channel: .cli, at: Date()))
            #expect(try await woke)
            #expect(Self.seconds(since: start) < 15)
            #expect(try await worker.run(id: run.id)?.status == .queued)
            await other.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func waitingForWorkTimesOutWhenNothingHappens(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.waitForWork(timeout: 0)
            let start = ContinuousClock.now
            #expect(try await store.waitForWork(timeout: 0.5) == false)
            #expect(Self.seconds(since: start) >= 0.45)
        }
    }

    @Test(arguments: Backend.allCases)
    func aCancelledWaitReturnsPromptly(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.waitForWork(timeout: 0)
            let start = ContinuousClock.now
            let waiting = Task { try await store.waitForWork(timeout: 60) }
            try await Task.sleep(for: .milliseconds(200))
            waiting.cancel()
            #expect(try await waiting.value == false)
            #expect(Self.seconds(since: start) < 30)
        }
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
