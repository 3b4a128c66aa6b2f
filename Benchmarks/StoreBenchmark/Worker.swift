import Foundation
import Logging
import SignoffStore

/// A runner stand-in for the multi-process tests: claims runs, executes `steps` checkpointed
/// "supersteps" (each sleeping `step-ms`), pauses on an approval request at step `pause-at`,
/// resumes when it is answered, and finishes. Prints one line per thing it does:
/// `claimed ID FROM_STEP`, `step ID N`, `paused ID`, `finished ID`, `lost ID`, `error TEXT`.
///
/// `--hold-at N` makes superstep N block after it began (before its checkpoint), printing
/// `holding ID N` and heartbeating, until `--hold-file` exists: the tests kill it there, so the kill
/// lands mid-superstep whatever the machine's load. `--go-file PATH` prints `ready` and waits for
/// PATH before the first claim (lines racing processes up without a clock).
struct Worker {
    var database: String
    var owner: String
    var leaseSeconds: Double
    var batch: Int
    var steps: Int
    var pauseAt: Int
    var stepMilliseconds: Int
    var idleExitSeconds: Double
    /// Seconds since 1970 to wait for before the first claim (lines racing processes up).
    var startAt: Double?
    /// Superstep that blocks mid-way (see above), and the file that lets it go on.
    var holdAt: Int
    var holdFile: String?
    /// A file whose existence starts the first claim.
    var goFile: String?

    init(_ o: Options) throws {
        database = try o.string("database")
        owner = o.string("owner", default: "worker-\(ProcessInfo.processInfo.processIdentifier)")
        leaseSeconds = try o.double("lease", default: 30)
        batch = try o.int("batch", default: 50)
        steps = try o.int("steps", default: 0)
        pauseAt = try o.int("pause-at", default: -1)
        stepMilliseconds = try o.int("step-ms", default: 0)
        idleExitSeconds = try o.double("idle-exit", default: 1)
        startAt = o.values["start-at"].flatMap(Double.init)
        holdAt = try o.int("hold-at", default: -1)
        holdFile = o.values["hold-file"]
        goFile = o.values["go-file"]
    }

    struct State: Codable {
        var step: Int
        var approved: Bool
        var padding: String
    }

    static func requestID(_ runID: String) -> String { "\(runID)-approval" }

    func run() async throws {
        var logger = Logger(label: "worker")
        logger.logLevel = .warning
        let store = try await openStore(url: database, logger: logger, connections: 1)
        if let startAt {
            let wait = startAt - Date().timeIntervalSince1970
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
        }
        if let goFile {
            emit("ready \(owner)")
            while !FileManager.default.fileExists(atPath: goFile) { try await Task.sleep(for: .milliseconds(10)) }
        }
        var idleSince = Date()
        while true {
            let claimed: [ClaimedRun]
            do {
                claimed = try await store.claimRuns(owner: owner, limit: batch, leaseSeconds: leaseSeconds, now: Date())
            } catch let error as StoreError {
                emit("error claim \(error.code): \(error.message)")
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            if claimed.isEmpty {
                if Date().timeIntervalSince(idleSince) > idleExitSeconds { break }
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            var completions: [RunCompletion] = []
            for c in claimed {
                do {
                    if let done = try await execute(c, store: store) { completions.append(done) }
                } catch let error as StoreError where error.code == .leaseLost {
                    emit("lost \(c.run.id)")
                } catch let error as StoreError {
                    emit("error \(c.run.id) \(error.code): \(error.message)")
                }
            }
            if !completions.isEmpty {
                do {
                    let lost = try await store.finishMany(completions, now: Date())
                    let lostSet = Set(lost)
                    for c in completions {
                        emit(lostSet.contains(c.lease.runID) ? "lost \(c.lease.runID)" : "finished \(c.lease.runID)")
                    }
                } catch let error as StoreError {
                    emit("error finish \(error.code): \(error.message)")
                }
            }
            idleSince = Date()
        }
        await store.close()
        emit("exit \(owner)")
    }

    /// Runs one claimed run until it pauses (nil) or completes (its completion).
    func execute(_ claim: ClaimedRun, store: any RunStore) async throws -> RunCompletion? {
        var lease = claim.lease
        var state = State(step: 0, approved: false, padding: "")
        if let data = claim.checkpoint?.data { state = try JSONDecoder().decode(State.self, from: data) }
        let startedAt = state.step
        emit("claimed \(claim.run.id) \(startedAt)")
        var delivered: [String] = []
        if claim.answers[Self.requestID(claim.run.id)] != nil {
            state.approved = true
            delivered = [Self.requestID(claim.run.id)]
        }
        while state.step < steps {
            if state.step == pauseAt && !state.approved {
                let id = Self.requestID(claim.run.id)
                _ = try await store.pause(lease, checkpoint: nil, requests: [
                    NewRequest(id: id, executorID: "gate", stepID: "review", requestType: "Approval",
                               requestData: Data(#"{"run":"\#(claim.run.id)"}"#.utf8), responseType: "Bool",
                               reviewers: ["ann@example.org"],
                               tokens: [NewToken(tokenHash: "token-\(id)", reviewer: "ann@example.org")]),
                ], mail: [NewMail(messageID: "<\(id)@bench>", kind: .request, recipient: "ann@example.org",
                                  raw: Data("Subject: review\r\n\r\nAPPROVE?\r\n".utf8), requestID: id, runID: claim.run.id)],
                    delivered: delivered, now: Date())
                emit("paused \(claim.run.id)")
                return nil
            }
            if stepMilliseconds > 0 { try await Task.sleep(for: .milliseconds(stepMilliseconds)) }
            if state.step + 1 == holdAt {
                emit("holding \(claim.run.id) \(holdAt)")
                while !(holdFile.map { FileManager.default.fileExists(atPath: $0) } ?? false) {
                    try await Task.sleep(for: .milliseconds(20))
                    if lease.expiresAt.timeIntervalSinceNow < leaseSeconds * 0.75 {
                        lease = try await store.heartbeat(lease, until: Date().addingTimeInterval(leaseSeconds))
                    }
                }
            }
            if lease.expiresAt.timeIntervalSinceNow < leaseSeconds / 2 {
                lease = try await store.heartbeat(lease, until: Date().addingTimeInterval(leaseSeconds))
            }
            state.step += 1
            try await store.saveCheckpoint(lease, checkpoint: NewCheckpoint(superstep: state.step, data: try JSONEncoder().encode(state)),
                                           delivered: delivered, now: Date())
            delivered = []
            emit("step \(claim.run.id) \(state.step)")
        }
        return RunCompletion(lease: lease, status: .succeeded,
                             output: Data(#"{"steps":\#(state.step),"resumed_from":\#(startedAt)}"#.utf8))
    }
}
