import Foundation
import Synchronization

/// Hands one run call's checkpoints to a group-committing storage (`groupCommit == true`) without
/// waiting for each: checkpoints queue up in order while a single writer task commits whatever has
/// queued as one `save(batch:)`. The first failure stops the writer, drops everything queued
/// after it and is thrown by every later `submit`; `drain()` waits for the writer to stop.
final class CheckpointPipeline: Sendable {
    private struct State {
        var queue: [Checkpoint] = []
        var writing = false
        var failure: WorkflowError?
        /// Committed, not yet taken by `takeDurable()`.
        var durable: [Checkpoint] = []
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let storage: any CheckpointStorage
    private let runID: String
    private let state = Mutex(State())

    init(storage: any CheckpointStorage, runID: String) {
        self.storage = storage
        self.runID = runID
    }

    /// Queues a checkpoint; throws the failure of an earlier batch, if any.
    func submit(_ checkpoint: Checkpoint) throws(WorkflowError) {
        let start = try state.withLock { (s: inout State) throws(WorkflowError) -> Bool in
            if let failure = s.failure { throw failure }
            s.queue.append(checkpoint)
            if s.writing { return false }
            s.writing = true
            return true
        }
        // Not a child of the run's task: a cancelled run still gets its checkpoints committed.
        if start { Task { await self.write() } }
    }

    /// The checkpoints committed since the last call, in order.
    func takeDurable() -> [Checkpoint] {
        state.withLock { s in
            let done = s.durable
            s.durable.removeAll()
            return done
        }
    }

    /// Waits until everything submitted is committed or a batch failed; returns the failure.
    func drain() async -> WorkflowError? {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s in
                if !s.writing { return true }
                s.waiters.append(c)
                return false
            }
            if idle { c.resume() }
        }
        return state.withLock { $0.failure }
    }

    private func write() async {
        while true {
            var batch = take()
            // Commit delay (as a database's): a small batch while nobody waits for the run to end
            // gets a moment to grow, so a fast loop pays one commit per many supersteps.
            if !batch.isEmpty && batch.count < Self.smallBatch && state.withLock({ $0.waiters.isEmpty }) {
                try? await Task.sleep(for: Self.commitDelay)
                batch += take()
            }
            if batch.isEmpty {
                // Re-check under the lock: a submit may have queued one meanwhile.
                let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { s in
                    guard s.queue.isEmpty else { return nil }
                    s.writing = false
                    let w = s.waiters
                    s.waiters.removeAll()
                    return w
                }
                guard let waiters else { continue }
                for w in waiters { w.resume() }
                return
            }
            do {
                try await storage.save(batch: batch)
                state.withLock { $0.durable.append(contentsOf: batch) }
            } catch {
                let failure = describe(error, batch)
                let waiters = state.withLock { s in
                    s.failure = failure
                    s.queue.removeAll()
                    s.writing = false
                    let w = s.waiters
                    s.waiters.removeAll()
                    return w
                }
                for w in waiters { w.resume() }
                return
            }
        }
    }

    private static let smallBatch = 64
    private static let commitDelay = Duration.microseconds(500)

    private func take() -> [Checkpoint] {
        state.withLock { s in
            let b = s.queue
            s.queue.removeAll()
            return b
        }
    }

    private func describe(_ error: any Error, _ batch: [Checkpoint]) -> WorkflowError {
        let first = batch.first!.superstep, last = batch.last!.superstep
        let which = batch.count == 1 ? "checkpoint \(batch[0].id) (superstep \(first))"
            : "\(batch.count) checkpoints (supersteps \(first)-\(last))"
        let code = (error as? WorkflowError)?.code ?? .storageFailed
        let detail = (error as? WorkflowError)?.message ?? "\(error)"
        return WorkflowError(code, "saving \(which) of run \(runID) failed: \(detail); no later checkpoint was saved. Fix the checkpoint storage and resume from the run's last saved checkpoint")
    }
}
