import Foundation

/// One row of a run's append-only, hash-chained audit trail.
///
/// `hash` = lower-case hex SHA-256 of `prevHash` + "\n" + `canonicalContent`; the first event of a
/// run has an empty `prevHash`. `verifyAudit` recomputes the chain.
public struct EventRecord: Sendable, Hashable {
    /// Global insertion order.
    public var id: Int64
    public var runID: String
    /// 1, 2, 3 … within the run.
    public var sequence: Int
    /// e.g. enqueued, claimed, checkpoint, paused, request, vote, answered, finished, cancelled, lease_expired.
    public var kind: String
    /// Who caused it (runner id, reviewer, CLI user, `system`).
    public var actor: String?
    /// Details as JSON text (sorted keys).
    public var data: String
    public var at: Date
    public var prevHash: String
    public var hash: String

    /// The exact bytes hashed after the previous hash.
    public static func canonicalContent(runID: String, sequence: Int, kind: String, actor: String?,
                                        data: String, atMilliseconds: Int64) -> String {
        "\(runID)\n\(sequence)\n\(kind)\n\(actor ?? "")\n\(atMilliseconds)\n\(data)"
    }
}

/// The result of checking a run's audit chain.
public struct AuditReport: Sendable, Hashable {
    /// The run checked.
    public var runID: String
    /// Events checked.
    public var eventCount: Int
    /// The first event whose hash does not match (nil: the chain is intact).
    public var firstBrokenSequence: Int?
    /// What is wrong with it.
    public var problem: String?
    /// True when every link verified.
    public var isIntact: Bool { firstBrokenSequence == nil }
}
