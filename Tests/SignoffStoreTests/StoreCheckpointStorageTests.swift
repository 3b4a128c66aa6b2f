import Foundation
import SignoffEngine
@testable import SignoffStore
import Testing

/// The engine's checkpoints kept in the run store, through the engine's own `CheckpointStorage` protocol.
struct StoreCheckpointStorageTests {
    /// One executor asks for approval of its input and yields the verdict.
    static func gateWorkflow() throws -> Workflow {
        let gate = FunctionExecutor(id: "gate") { h in
            h.on(String.self) { text, ctx in try ctx.requestInfo(text, responseType: Bool.self) }
            h.onResponse(to: String.self, Bool.self) { request, approved, ctx in
                try ctx.yieldOutput(approved ? "approved: \(request)" : "rejected: \(request)")
            }
            h.yields(String.self)
        }
        return try WorkflowBuilder(name: "gate").addExecutor(gate).setStart("gate").build()
    }

    @Test(arguments: Backend.allCases)
    func aWorkflowPausesInOneStoreAndFinishesFromAnotherConnection(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            let workflow = try Self.gateWorkflow()
            let (run, _) = try await store.enqueue(NewRun(job: "gate", input: json(#""Q3""#)), now: t0)
            let claim = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 60, now: t0).first)
            let storage = StoreCheckpointStorage(store: store, lease: claim.lease)
            let first = try await workflow.run("Q3", options: RunOptions(runID: run.id, checkpointStorage: storage))
            #expect(first.status == .waitingForInput)
            let pending = try #require(first.pendingRequests.first)
            let saved = try await storage.list(runID: run.id)
            #expect(!saved.isEmpty)
            #expect(try await storage.latest(runID: run.id)?.id == first.checkpoint.id)
            #expect(try await storage.load(id: first.checkpoint.id)?.pendingRequests.map(\.id) == [pending.id])
            _ = try await store.pause(claim.lease, checkpoint: nil, requests: [
                NewRequest(id: pending.id, executorID: pending.executorID, requestType: pending.requestTypeName,
                           requestData: try pending.dataJSON, responseType: pending.responseTypeName, reviewers: ["ann@example.org"]),
            ], mail: [], delivered: [], now: t0.addingTimeInterval(1))
            #expect(try await store.request(id: pending.id)?.requestData == json(#""Q3""#))

            _ = try await store.answer(Answer(requestID: pending.id, reviewer: "ann@example.org", verdict: .approve,
                                              response: json("true"), channel: .cli, at: t0.addingTimeInterval(2)))

            // Another connection (as another process would) picks the run up and finishes it.
            let other = try await db.open()
            let resumed = try #require(try await other.claimRuns(owner: "b", limit: 1, leaseSeconds: 60, now: t0.addingTimeInterval(3)).first)
            let checkpoint = try Checkpoint.decode(from: try #require(resumed.checkpoint?.data))
            #expect(checkpoint.id == first.checkpoint.id)
            let final = try await workflow.resume(from: checkpoint, responses: resumed.answers.mapValues { RequestResponse.json($0) },
                                                  options: RunOptions(checkpointStorage: StoreCheckpointStorage(store: other, lease: resumed.lease)))
            #expect(final.status == .idle)
            #expect(final.outputs(as: String.self) == ["approved: Q3"])
            try await other.finish(RunCompletion(lease: resumed.lease, status: .succeeded, output: json(#""approved: Q3""#)),
                                   now: t0.addingTimeInterval(4))
            #expect(try await store.run(id: run.id)?.status == .succeeded)
            await other.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func aRunnerThatLostItsLeaseCannotSaveEngineCheckpoints(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let workflow = try Self.gateWorkflow()
            let (run, _) = try await store.enqueue(NewRun(job: "gate"), now: t0)
            let stale = try #require(try await store.claimRuns(owner: "a", limit: 1, leaseSeconds: 1, now: t0).first)
            _ = try await store.claimRuns(owner: "b", limit: 1, leaseSeconds: 60, now: t0.addingTimeInterval(5))
            let result = try await workflow.run("Q4", options: RunOptions(runID: run.id,
                                                                          checkpointStorage: StoreCheckpointStorage(store: store, lease: stale.lease)))
            #expect(result.status == .failed)
            #expect(try await store.checkpoints(runID: run.id, withData: false).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func savingWithoutALeaseDeletingAndLoadingAbsentIDs(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let workflow = try Self.gateWorkflow()
            let (run, _) = try await store.enqueue(NewRun(job: "gate"), now: t0)
            let storage = StoreCheckpointStorage(store: store)
            let result = try await workflow.run("Q1", options: RunOptions(runID: run.id, checkpointStorage: storage))
            let all = try await storage.list(runID: run.id)
            #expect(all.last?.id == result.checkpoint.id)
            #expect(try await storage.load(id: "no-such-checkpoint") == nil)
            try await storage.delete(id: "no-such-checkpoint")
            // The store refuses to drop the checkpoint a queued run resumes from; older ones may go.
            if all.count > 1 {
                try await storage.delete(id: all[0].id)
                #expect(try await storage.load(id: all[0].id) == nil)
            }
            await #expect(throws: StoreError.self) { try await storage.delete(id: result.checkpoint.id) }
        }
    }
}
