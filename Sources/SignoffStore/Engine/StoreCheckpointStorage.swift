import Foundation
import SignoffEngine

/// The engine's `CheckpointStorage` on a run store (SQLite or PostgreSQL).
///
/// Give it the runner's `Lease` and every save is fenced: once another runner has taken the run
/// over, the engine's next save fails with `StoreError.leaseLost` instead of overwriting the new
/// owner's progress. Without a lease (tools, tests) saves go straight to the run.
/// The engine's run id must be the store's run id.
public struct StoreCheckpointStorage: CheckpointStorage {
    /// The store that holds the checkpoints.
    public let store: any RunStore
    /// The lease saves are made under, if any.
    public let lease: Lease?
    /// Where "now" comes from (checkpoint times).
    public let clock: @Sendable () -> Date

    /// A storage view of `store`; pass the runner's `lease` to fence saves.
    public init(store: any RunStore, lease: Lease? = nil, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.lease = lease
        self.clock = clock
    }

    public func save(_ checkpoint: Checkpoint) async throws {
        let new = NewCheckpoint(id: checkpoint.id, superstep: checkpoint.superstep, parentID: checkpoint.parentID,
                                data: try checkpoint.encoded())
        if let lease {
            guard lease.runID == checkpoint.runID else {
                throw StoreError(.invalidState, "checkpoint \(checkpoint.id) belongs to run \(checkpoint.runID), but this storage holds the lease of run \(lease.runID); start the engine run with the store's run id")
            }
            try await store.saveCheckpoint(lease, checkpoint: new, delivered: [], now: clock())
        } else {
            try await store.putCheckpoint(runID: checkpoint.runID, checkpoint: new, now: clock())
        }
    }

    public func load(id: String) async throws -> Checkpoint? {
        guard let record = try await store.checkpoint(id: id) else { return nil }
        return try Checkpoint.decode(from: record.data)
    }

    public func latest(runID: String) async throws -> Checkpoint? {
        guard let record = try await store.latestCheckpoint(runID: runID) else { return nil }
        return try Checkpoint.decode(from: record.data)
    }

    public func list(runID: String) async throws -> [Checkpoint] {
        try await store.checkpoints(runID: runID, withData: true).map { try Checkpoint.decode(from: $0.data) }
    }

    public func delete(id: String) async throws {
        guard let record = try await store.checkpoint(id: id) else { return }
        do {
            try await store.deleteCheckpoint(runID: record.runID, id: id)
        } catch let error as StoreError where error.code == .notFound {
            return
        }
    }
}
