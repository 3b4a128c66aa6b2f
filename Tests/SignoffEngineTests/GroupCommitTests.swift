import Foundation
import SignoffEngine
import Synchronization
import Testing

/// A storage whose saves fail from a given superstep on (group commit or not), keeping the rest in
/// memory; counts the batches it was given.
final class FailingStorage: CheckpointStorage {
    let inner = InMemoryCheckpointStorage()
    let failFrom: Int
    let groupCommit: Bool
    let batches = Mutex(0)

    init(failFrom: Int, groupCommit: Bool) {
        self.failFrom = failFrom
        self.groupCommit = groupCommit
    }

    struct DiskFull: Error, CustomStringConvertible {
        var description: String { "the disk is full (test)" }
    }

    func save(_ checkpoint: Checkpoint) async throws {
        if checkpoint.superstep >= failFrom { throw DiskFull() }
        await inner.save(checkpoint)
    }

    func save(batch: [Checkpoint]) async throws {
        batches.withLock { $0 += 1 }
        // All or nothing, like the file storage.
        if batch.contains(where: { $0.superstep >= failFrom }) { throw DiskFull() }
        for cp in batch { await inner.save(cp) }
    }

    func load(id: String) async throws -> Checkpoint? { await inner.load(id: id) }
    func latest(runID: String) async throws -> Checkpoint? { await inner.latest(runID: runID) }
    func list(runID: String) async throws -> [Checkpoint] { await inner.list(runID: runID) }
    func delete(id: String) async throws { await inner.delete(id: id) }
}

func savedIDs(_ events: [WorkflowEvent]) -> [String] {
    events.compactMap { if case .checkpointSaved(let id, _) = $0 { id } else { nil } }
}

func expectUnbrokenChain(_ chain: [Checkpoint]) {
    #expect(chain.first?.parentID == nil)
    #expect(chain.map(\.superstep) == Array(0..<chain.count))
    for (parent, child) in zip(chain, chain.dropFirst()) { #expect(child.parentID == parent.id) }
}

struct GroupCommitTests {
    func folder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("signoff-gc-\(UUID().uuidString)")
    }

    @Test(arguments: [true, false])
    func afterARunReturnsEveryCheckpointIsOnDiskLoadsAndChainsToItsParent(groupCommit: Bool) async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try FileCheckpointStorage(directory: dir, groupCommit: groupCommit)
        let recorder = EventRecorder()
        let result = try await counterWorkflow(limit: 60)
            .run(0, options: RunOptions(runID: "gc", checkpointStorage: storage), onEvent: recorder.sink)
        #expect(result.status == .idle)
        #expect(result.supersteps == 61)
        // A fresh storage on the same folder: what another process would find after this call.
        let reopened = try FileCheckpointStorage(directory: dir)
        let chain = try await reopened.list(runID: "gc")
        #expect(chain.count == 62)
        expectUnbrokenChain(chain)
        for cp in chain { #expect(try await reopened.load(id: cp.id)?.superstep == cp.superstep) }
        #expect(try await reopened.latest(runID: "gc")?.id == result.checkpoint.id)
        // Every checkpoint reported saved, in order, and only once durable.
        #expect(savedIDs(recorder.all) == chain.map(\.id))
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test(arguments: [true, false])
    func aStorageWhoseWritesFailMakesTheRunFailWithTheErrorAndSavesNothingAfterIt(groupCommit: Bool) async throws {
        let storage = FailingStorage(failFrom: 5, groupCommit: groupCommit)
        let recorder = EventRecorder()
        let result = try await counterWorkflow(limit: 200, max: 300, delay: .milliseconds(5))
            .run(0, options: RunOptions(runID: "fails", checkpointStorage: storage), onEvent: recorder.sink)
        #expect(result.status == .failed)
        let error = try #require(result.error)
        #expect(error.code == .storageFailed)
        #expect(error.message.contains("the disk is full (test)"))
        #expect(error.message.contains("run fails"))
        // Saved: an unbroken prefix that stops before the failing superstep; the result points at
        // its last checkpoint, the one to resume from.
        let chain = try await storage.list(runID: "fails")
        expectUnbrokenChain(chain)
        #expect(groupCommit ? chain.count <= 5 : chain.count == 5)
        #expect(result.checkpoint.id == chain.last?.id)
        #expect(savedIDs(recorder.all) == chain.map(\.id))
        #expect(recorder.all.filter { if case .failed = $0 { true } else { false } }.count == 1)
        #expect(recorder.all.last.map(label) == "status:failed")
        // The run stopped soon after the failure (the pipeline refuses further checkpoints): the
        // failing batch is committed long before the run's second of supersteps is over.
        #expect(groupCommit ? result.supersteps < 200 : result.supersteps == 5)
        // Resuming from the last saved checkpoint finishes the run with a working storage.
        let finished = try await counterWorkflow(limit: 200, max: 300).resume(from: result.checkpoint)
        #expect(finished.outputs(as: Int.self) == [200])
    }

    @Test func aFileStorageThatCannotWriteFailsTheRunWithTheFileError() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try FileCheckpointStorage(directory: dir)
        // A plain file where the run's folder should be.
        try Data("not a folder".utf8).write(to: dir.appendingPathComponent("blocked"))
        let result = try await counterWorkflow(limit: 10).run(0, options: RunOptions(runID: "blocked", checkpointStorage: storage))
        #expect(result.status == .failed)
        let error = try #require(result.error)
        #expect(error.code == .storageFailed)
        #expect(error.message.contains("Not a directory"))
        #expect(error.message.contains("blocked"))
    }

    @Test func aCancelledRunReturnsOnlyOnceItsCheckpointsAreDurable() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try FileCheckpointStorage(directory: dir)
        let recorder = EventRecorder()
        let wf = try counterWorkflow(limit: 200, max: 300, delay: .milliseconds(2))
        let task = Task { try await wf.run(0, options: RunOptions(runID: "cancel-gc", checkpointStorage: storage), onEvent: recorder.sink) }
        while savedIDs(recorder.all).count < 5 { try await Task.sleep(for: .milliseconds(2)) }
        task.cancel()
        let result = try await task.value
        #expect(result.status == .cancelled)
        let chain = try await FileCheckpointStorage(directory: dir).list(runID: "cancel-gc")
        expectUnbrokenChain(chain)
        #expect(result.checkpoint.id == chain.last?.id)
        #expect(savedIDs(recorder.all) == chain.map(\.id))
        let finished = try await wf.resume(from: result.checkpoint)
        #expect(finished.outputs(as: Int.self) == [200])
    }

    @Test func aBatchIsSavedInOrderAndReadsBack() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let memory = InMemoryCheckpointStorage()
        _ = try await counterWorkflow(limit: 20).run(0, options: RunOptions(runID: "b", checkpointStorage: memory))
        let all = await memory.list(runID: "b")
        let storage = try FileCheckpointStorage(directory: dir)
        try await storage.save(batch: Array(all[0..<10]))
        try await storage.save(batch: Array(all[10...]))
        let back = try await storage.list(runID: "b")
        #expect(back.map(\.id) == all.map(\.id))
        expectUnbrokenChain(back)
    }
}
