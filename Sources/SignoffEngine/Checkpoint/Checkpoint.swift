import Foundation

/// Everything needed to continue a run in another process: taken on entry and after every
/// superstep. Codable, versioned JSON; payloads carry the stable type names chosen by the program.
///
/// Hosts store the bytes of `encoded()` and read them back with `Checkpoint.decode(from:)`;
/// `Workflow.resume(from:responses:)` restores one onto a fresh workflow instance.
public struct Checkpoint: Codable, Sendable {
    /// The encoding version this build writes and reads.
    public static let formatVersion = 1

    /// The encoding version (`formatVersion` when written by this build).
    public var version: Int
    /// This checkpoint's id (unique).
    public var id: String
    /// The run it belongs to.
    public var runID: String
    /// The checkpoint taken just before this one in the same run (nil for the first).
    public var parentID: String?
    /// The name of the workflow the run belongs to.
    public var workflowName: String
    /// A hash of the graph; a restore onto a different graph is refused with what changed.
    public var graphHash: String
    /// The graph the checkpoint was taken with (to name what changed on a mismatch).
    public var graph: GraphDescription
    /// Supersteps completed in this run so far (across all calls).
    public var superstep: Int
    /// When the checkpoint was taken.
    public var createdAt: Date
    /// The run's status when the checkpoint was taken.
    public var status: WorkflowRunState
    var messages: [InFlightMessage]
    /// Requests waiting for a response, in the order they were issued.
    public var pendingRequests: [PendingRequest]
    /// Ids of requests already answered (a second answer is refused).
    public var answeredRequestIDs: [String]
    var sharedState: [String: Payload]
    var executorStates: [String: ExecutorSnapshot]
    /// Per fan-in group (declaration order), per source, the buffered messages.
    var fanInBuffers: [[[Payload]]]
    /// Every output yielded so far.
    public var outputs: [WorkflowOutput]

    /// How many messages are in flight (to be delivered in the next superstep).
    public var messagesInFlight: Int { messages.count }

    /// The keys of the committed shared state.
    public var sharedStateKeys: [String] { sharedState.keys.sorted() }

    /// A committed shared state value as `T` (nil when absent; throws when it holds another type).
    public func sharedState<T: WorkflowPayload>(_ key: String, as type: T.Type = T.self) throws -> T? {
        guard let p = sharedState[key] else { return nil }
        guard let v = try p.value(as: T.self) else {
            throw WorkflowError(.stateTypeMismatch, "shared state '\(key)' holds a \(p.typeName), not a \(T.typeName)")
        }
        return v
    }

    /// The number of messages buffered per fan-in group (declaration order), per source.
    public var fanInBufferCounts: [[Int]] { fanInBuffers.map { $0.map(\.count) } }

    /// Whether the checkpoint holds a saved state for this executor.
    public func hasExecutorState(_ executorID: String) -> Bool { executorStates[executorID] != nil }

    /// The checkpoint as JSON bytes.
    public func encoded() throws -> Data {
        do { return try JSONCoding.encoder.encode(self) } catch {
            throw WorkflowError(.checkpointEncoding, "checkpoint \(id) of run \(runID) cannot be encoded: \(error)")
        }
    }

    /// Throws unless `data` reads back as `checkpoint` (a storage calls it before writing, so it
    /// never saves what it cannot load). Decodes once and compares what identifies the state.
    static func verify(_ data: Data, against checkpoint: Checkpoint) throws {
        let back = try decode(from: data)
        guard back.id == checkpoint.id, back.runID == checkpoint.runID, back.parentID == checkpoint.parentID,
              back.superstep == checkpoint.superstep, back.graphHash == checkpoint.graphHash,
              back.messages.count == checkpoint.messages.count,
              back.pendingRequests.map(\.id) == checkpoint.pendingRequests.map(\.id),
              back.answeredRequestIDs == checkpoint.answeredRequestIDs,
              back.sharedState.count == checkpoint.sharedState.count,
              back.executorStates.count == checkpoint.executorStates.count,
              back.fanInBufferCounts == checkpoint.fanInBufferCounts,
              back.outputs.count == checkpoint.outputs.count else {
            throw WorkflowError(.checkpointEncoding, "checkpoint \(checkpoint.id) of run \(checkpoint.runID) does not read back as written; not saved")
        }
    }

    /// Reads a checkpoint from JSON bytes, refusing versions this build does not know.
    public static func decode(from data: Data) throws -> Checkpoint {
        struct Probe: Decodable { var version: Int }
        do {
            let cp = try JSONCoding.decoder.decode(Checkpoint.self, from: data)
            if cp.version == formatVersion { return cp }
        } catch {
            // Fall through: say whether the bytes are another version or not a checkpoint at all.
            guard let probe = try? JSONCoding.decoder.decode(Probe.self, from: data), probe.version != formatVersion else {
                throw WorkflowError(.checkpointEncoding, "these bytes are not a readable Signoff checkpoint: \(error)")
            }
        }
        let version = (try? JSONCoding.decoder.decode(Probe.self, from: data).version) ?? -1
        throw WorkflowError(.unsupportedCheckpointVersion,
                            "checkpoint format version \(version) is not supported by this build (it reads version \(formatVersion)); restore it with a matching version of the program")
    }
}

/// A message (or response, or request cancellation) waiting for the next superstep.
struct InFlightMessage: Codable, Sendable {
    enum Kind: String, Codable, Sendable { case message, response, cancellation }
    var kind: Kind
    /// Sender id; nil for the run's input.
    var source: String?
    /// Explicit target id, if the sender named one (always set for input).
    var target: String?
    /// The message, or the response value.
    var payload: Payload?
    /// For responses and cancellations: the request.
    var request: PendingRequest?
}
