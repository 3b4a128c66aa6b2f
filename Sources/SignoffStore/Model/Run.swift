import Foundation

/// Where a run is in its life. Terminal statuses: succeeded, rejected, failed, cancelled, expired.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// Waiting for a runner to claim it.
    case queued
    /// Claimed by a runner holding a lease.
    case running
    /// Paused on one or more pending human requests.
    case waiting
    /// Finished normally.
    case succeeded
    /// Finished because a reviewer rejected it.
    case rejected
    /// Finished with an error.
    case failed
    /// Cancelled by a user.
    case cancelled
    /// A request expired and the timeout policy ended the run.
    case expired

    /// True for statuses a run never leaves.
    public var isTerminal: Bool {
        switch self {
        case .queued, .running, .waiting: false
        case .succeeded, .rejected, .failed, .cancelled, .expired: true
        }
    }
}

/// What to put in the queue: one run of a job.
public struct NewRun: Sendable, Hashable {
    /// The job name (e.g. the job file's `name`).
    public var job: String
    /// The run's input as JSON bytes.
    public var input: Data
    /// Who asked for the run (an address or user name), used for separation of duties.
    public var requestedBy: String?
    /// When set, a second enqueue with the same key returns the existing run instead of a new one.
    public var uniqueKey: String?
    /// The run this one re-runs (its attempt is the old one's + 1).
    public var rerunOf: String?
    /// Do not start before this time.
    public var notBefore: Date?

    /// Describes a run to enqueue.
    public init(job: String, input: Data = Data("{}".utf8), requestedBy: String? = nil,
                uniqueKey: String? = nil, rerunOf: String? = nil, notBefore: Date? = nil) {
        self.job = job
        self.input = input
        self.requestedBy = requestedBy
        self.uniqueKey = uniqueKey
        self.rerunOf = rerunOf
        self.notBefore = notBefore
    }
}

/// One run as stored.
public struct RunRecord: Sendable, Hashable, Codable {
    /// The run's id (sortable by creation time).
    public var id: String
    /// The job it runs.
    public var job: String
    /// Its current status.
    public var status: RunStatus
    /// 1 for a first run, n+1 for a rerun of attempt n.
    public var attempt: Int
    /// The run this one re-runs, if any.
    public var rerunOf: String?
    /// The runner that holds the lease (while running).
    public var leaseOwner: String?
    /// When the lease runs out; after that another runner may claim the run.
    public var leaseExpiresAt: Date?
    /// How many times the run was claimed (the fencing token of the current lease).
    public var claims: Int
    /// Who asked for the run.
    public var requestedBy: String?
    /// The enqueue deduplication key.
    public var uniqueKey: String?
    /// Input JSON bytes.
    public var input: Data
    /// Output JSON bytes once finished.
    public var output: Data?
    /// Error text for failed runs.
    public var error: String?
    /// Sequence number of the latest checkpoint (0: none yet).
    public var checkpointSequence: Int
    /// Not claimable before this time.
    public var notBefore: Date?
    /// When it was enqueued.
    public var createdAt: Date
    /// When a runner first claimed it.
    public var startedAt: Date?
    /// Last change of any kind.
    public var updatedAt: Date
    /// When it reached a terminal status.
    public var finishedAt: Date?
}

/// The right to write to one claimed run: the run id, the claiming runner and a fencing token.
///
/// Every runner write checks all three, so a runner whose lease expired and was claimed by another
/// runner gets `StoreError.leaseLost` instead of overwriting the new owner's work.
public struct Lease: Sendable, Hashable, Codable {
    /// The run.
    public var runID: String
    /// The runner that claimed it.
    public var owner: String
    /// The run's claim counter at the time of this claim.
    public var fence: Int
    /// When the lease runs out unless renewed by `heartbeat`.
    public var expiresAt: Date

    /// Builds a lease value (normally returned by `claimRuns`).
    public init(runID: String, owner: String, fence: Int, expiresAt: Date) {
        self.runID = runID
        self.owner = owner
        self.fence = fence
        self.expiresAt = expiresAt
    }
}

/// A run handed to a runner by `claimRuns`, with what it needs to resume.
public struct ClaimedRun: Sendable {
    /// The run (status `running`).
    public var run: RunRecord
    /// The lease to pass to every write.
    public var lease: Lease
    /// The latest checkpoint, if the run has one (resume from it).
    public var checkpoint: CheckpointRecord?
    /// Decided requests whose responses the engine has not received yet: request id → response JSON.
    public var answers: [String: Data]
    /// The same answers with their full request records.
    public var answeredRequests: [RequestRecord]
}

/// A filter for `runs(filter:)`.
public struct RunFilter: Sendable, Hashable {
    /// Only this job.
    public var job: String?
    /// Only these statuses (empty: all).
    public var statuses: [RunStatus]
    /// Only runs created at or after this time.
    public var since: Date?
    /// At most this many, newest first.
    public var limit: Int

    /// Builds a filter; all criteria optional.
    public init(job: String? = nil, statuses: [RunStatus] = [], since: Date? = nil, limit: Int = 100) {
        self.job = job
        self.statuses = statuses
        self.since = since
        self.limit = limit
    }
}

/// How a claimed run ends, for `finish` / `finishMany`.
public struct RunCompletion: Sendable {
    /// The lease under which the run was executed.
    public var lease: Lease
    /// A terminal status.
    public var status: RunStatus
    /// Output JSON bytes.
    public var output: Data?
    /// Error text (for failed runs).
    public var error: String?
    /// Mail to send in the same transaction (e.g. a failure notice).
    public var mail: [NewMail]

    /// Describes the end of a run.
    public init(lease: Lease, status: RunStatus, output: Data? = nil, error: String? = nil, mail: [NewMail] = []) {
        self.lease = lease
        self.status = status
        self.output = output
        self.error = error
        self.mail = mail
    }
}
