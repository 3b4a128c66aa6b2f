import Synchronization

/// Turns many concurrent single operations into a few set-based ones.
///
/// Callers `submit` one operation each and wait. At most `lanes` batches run at once; an operation
/// that arrives while every lane is busy waits in the queue, and the next free lane takes the
/// whole queue (up to `maxBatch`) as one batch. An idle store therefore runs each operation at
/// once, alone, with no added latency, and a busy one runs them in batches that grow with the
/// load: what one SQL statement per row cost becomes one statement per batch.
///
/// `execute` returns one result per operation, in order: an operation that fails alone (a lost
/// lease, an already-decided request) fails only its caller. When `execute` throws, the whole
/// batch failed and every caller in it gets that error.
final class Coalescer<Operation: Sendable, Output: Sendable>: Sendable {
    typealias Execute = @Sendable ([Operation]) async throws -> [Result<Output, any Error>]

    private struct Waiting {
        var operation: Operation
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let lanes: Int
    private let maxBatch: Int
    private let execute: Execute

    /// - Parameters:
    ///   - lanes: how many batches may run at the same time (PostgreSQL: about the pool size;
    ///     SQLite: 1, its single writer).
    ///   - maxBatch: the most operations one batch takes.
    init(lanes: Int, maxBatch: Int, execute: @escaping Execute) {
        precondition(lanes > 0 && maxBatch > 0)
        self.lanes = lanes
        self.maxBatch = maxBatch
        self.execute = execute
    }

    /// How many operations wait for a lane.
    var queued: Int { state.withLock { $0.queue.count } }

    /// Runs `operation` in the next batch and returns its own result.
    func submit(_ operation: Operation) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let startLane = state.withLock { s -> Bool in
                s.queue.append(Waiting(operation: operation, continuation: continuation))
                guard s.running < lanes else { return false }
                s.running += 1
                return true
            }
            if startLane { Task { await self.drain() } }
        }
    }

    /// One lane: runs batches until the queue is empty, then gives the lane back.
    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Waiting] in
                let taken = Array(s.queue.prefix(maxBatch))
                s.queue.removeFirst(taken.count)
                if taken.isEmpty { s.running -= 1 }
                return taken
            }
            if batch.isEmpty { return }
            do {
                let results = try await execute(batch.map(\.operation))
                precondition(results.count == batch.count, "a coalesced batch must return one result per operation")
                for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
