import Foundation
import SignoffEngine
import SignoffStore

/// Moving a run's progress to its rerun.
public enum RunCheckpoints {
    /// Gives the rerun `newRunID` the old run's checkpoint, re-addressed to the new run, so the
    /// rerun continues where the old one stopped: the step that failed runs again, the steps that
    /// had finished do not.
    public static func carryOver(_ record: CheckpointRecord, to newRunID: String, store: any RunStore, now: Date) async throws {
        var checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.decode(from: record.data)
        } catch {
            throw RunnerError("rerun.checkpoint", "the checkpoint of run \(record.runID) cannot be read (\(error)); rerun it without --from-checkpoint")
        }
        checkpoint.runID = newRunID
        checkpoint.id += "-rerun"
        checkpoint.parentID = nil
        _ = try await store.putCheckpoint(runID: newRunID,
                                          checkpoint: NewCheckpoint(id: checkpoint.id, superstep: checkpoint.superstep,
                                                                    data: try checkpoint.encoded()),
                                          now: now)
    }
}
