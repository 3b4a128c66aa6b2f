import Foundation

/// Where checkpoints are kept. The engine ships an in-memory and a file implementation; the store
/// module adds SQLite and PostgreSQL.
public protocol CheckpointStorage: Sendable {
    /// Stores a checkpoint (replacing one with the same id).
    func save(_ checkpoint: Checkpoint) async throws
    /// The checkpoint with this id, or nil.
    func load(id: String) async throws -> Checkpoint?
    /// The most recent checkpoint of a run (highest superstep, then latest saved), or nil.
    func latest(runID: String) async throws -> Checkpoint?
    /// Every checkpoint of a run, oldest first.
    func list(runID: String) async throws -> [Checkpoint]
    /// Removes a checkpoint; removing an absent one is not an error.
    func delete(id: String) async throws
}

/// Checkpoints kept in memory (tests, short-lived processes).
public actor InMemoryCheckpointStorage: CheckpointStorage {
    private var byID: [String: Checkpoint] = [:]
    private var order: [String] = []

    public init() {}

    public func save(_ checkpoint: Checkpoint) {
        if byID.updateValue(checkpoint, forKey: checkpoint.id) == nil { order.append(checkpoint.id) }
    }

    public func load(id: String) -> Checkpoint? { byID[id] }

    public func latest(runID: String) -> Checkpoint? {
        list(runID: runID).last
    }

    public func list(runID: String) -> [Checkpoint] {
        // Stable sort by superstep keeps save order among equals (entry checkpoint first).
        order.compactMap { byID[$0] }.filter { $0.runID == runID }
            .enumerated().sorted { ($0.element.superstep, $0.offset) < ($1.element.superstep, $1.offset) }
            .map(\.element)
    }

    public func delete(id: String) {
        byID[id] = nil
        order.removeAll { $0 == id }
    }
}
