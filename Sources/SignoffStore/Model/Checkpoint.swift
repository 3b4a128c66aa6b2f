import Foundation

/// A checkpoint to store: the engine's encoded checkpoint bytes plus where it sits in the run.
public struct NewCheckpoint: Sendable, Hashable {
    /// The engine's checkpoint id (any string; unique per run). Nil: the store assigns one.
    public var id: String?
    /// The superstep the checkpoint was taken after.
    public var superstep: Int
    /// The checkpoint this one follows (engine id), if any.
    public var parentID: String?
    /// The encoded checkpoint (opaque to the store).
    public var data: Data

    /// Describes a checkpoint to save.
    public init(id: String? = nil, superstep: Int, parentID: String? = nil, data: Data) {
        self.id = id
        self.superstep = superstep
        self.parentID = parentID
        self.data = data
    }
}

/// A stored checkpoint.
public struct CheckpointRecord: Sendable, Hashable {
    /// The checkpoint id (engine-chosen or store-assigned).
    public var id: String
    /// The run it belongs to.
    public var runID: String
    /// 1, 2, 3 … within the run.
    public var sequence: Int
    /// The superstep it was taken after.
    public var superstep: Int
    /// The checkpoint it follows, if any.
    public var parentID: String?
    /// The encoded checkpoint.
    public var data: Data
    /// When it was saved.
    public var createdAt: Date
}
