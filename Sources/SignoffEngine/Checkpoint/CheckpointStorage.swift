import Foundation

/// Where checkpoints are kept. The engine ships an in-memory and a file implementation; the store
/// module adds SQLite and PostgreSQL.
///
/// ## Durability
///
/// By default (`groupCommit == false`) the engine awaits `save(_:)` after every superstep before it
/// runs the next one, so every checkpoint is stored when its `checkpointSaved` event is sent.
///
/// A storage that returns `true` from `groupCommit` lets the engine pipeline its saves: the run
/// hands its checkpoints over in order, without waiting for each, and the storage commits whatever
/// has queued up as one batch (`save(batch:)`), like a database's group commit. The guarantees
/// that remain:
/// - a run call (`run`, `resume`, streaming or not) never returns, on any path (finished, paused,
///   failed, cancelled), before every checkpoint it handed over is durable or has failed;
/// - checkpoints are committed in the order they were taken; when a batch fails, no later
///   checkpoint of that run is stored, and the run ends `.failed` with a `storageFailed` error
///   (at the latest when the call returns), its `checkpoint` being the last durable one;
/// - `checkpointSaved` is sent once the checkpoint is durable (so it can come a few supersteps
///   after the superstep that took it);
/// - what a crash (process or power) can lose is the batch in flight, and only while the call is
///   still running; never a checkpoint reported saved, never an older one.
public protocol CheckpointStorage: Sendable {
    /// Stores a checkpoint (replacing one with the same id); durable when it returns.
    func save(_ checkpoint: Checkpoint) async throws
    /// The checkpoint with this id, or nil.
    func load(id: String) async throws -> Checkpoint?
    /// The most recent checkpoint of a run (highest superstep, then latest saved), or nil.
    func latest(runID: String) async throws -> Checkpoint?
    /// Every checkpoint of a run, oldest first.
    func list(runID: String) async throws -> [Checkpoint]
    /// Removes a checkpoint; removing an absent one is not an error.
    func delete(id: String) async throws

    /// Whether the engine may hand checkpoints over without awaiting each one (see "Durability").
    /// Default: false.
    var groupCommit: Bool { get }
    /// Stores several checkpoints, in order, as one commit; durable when it returns. When it
    /// throws, none of the batch may be taken as stored (an implementation should leave none, or
    /// at most a prefix of the batch). Default: `save(_:)` for each, in order.
    func save(batch: [Checkpoint]) async throws
}

extension CheckpointStorage {
    /// Saves are awaited one by one unless a storage opts in.
    public var groupCommit: Bool { false }

    /// Saves each checkpoint in order.
    public func save(batch: [Checkpoint]) async throws {
        for checkpoint in batch { try await save(checkpoint) }
    }
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
