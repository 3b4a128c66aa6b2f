import Foundation
import Logging
import SignoffStore

/// The measurements. Each prints one JSON object.
enum Benchmarks {
    static var quiet: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        return logger
    }

    /// About 2 KiB: the size of a small engine checkpoint.
    static let checkpointBytes = Data(("{\"state\":\"" + String(repeating: "x", count: 2000) + "\"}").utf8)

    static func json(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func backendName(_ url: String) -> String {
        url.lowercased().hasPrefix("sqlite") ? "sqlite" : "postgres"
    }

    /// Checkpointed supersteps per second: `runs` runs in flight, each saving `steps` checkpoints.
    static func supersteps(_ o: Options) async throws {
        let url = try o.string("database")
        let runs = try o.int("runs", default: 16)
        let steps = try o.int("steps", default: 200)
        let store = try await openStore(url: url, logger: quiet, connections: try o.int("connections", default: 4))
        let created = try await store.enqueueMany((0..<runs).map { _ in NewRun(job: "bench-supersteps") }, now: Date())
        var claims: [ClaimedRun] = []
        while claims.count < created.count {
            claims += try await store.claimRuns(owner: "bench", limit: runs, leaseSeconds: 600, now: Date())
        }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in claims {
                group.addTask {
                    for s in 1...steps {
                        try await store.saveCheckpoint(c.lease, checkpoint: NewCheckpoint(superstep: s, data: checkpointBytes),
                                                       delivered: [], now: Date())
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - start).seconds
        _ = try await store.finishMany(claims.map { RunCompletion(lease: $0.lease, status: .succeeded) }, now: Date())
        await store.close()
        emit(json(["benchmark": "checkpointed_supersteps", "backend": backendName(url), "runs_in_flight": runs,
                   "supersteps": runs * steps, "checkpoint_bytes": checkpointBytes.count, "seconds": seconds,
                   "per_second": Double(runs * steps) / seconds]))
    }

    /// Pause → answer → resume cycles per second. `tasks` runners work in parallel, each claiming
    /// up to `batch` runs: a fresh run pauses on a request (checkpoint + request + token + mail),
    /// the answer is recorded (vote + request + token + run queued + inbound row), and the resumed
    /// run saves a checkpoint delivering the answer and finishes.
    static func cycles(_ o: Options) async throws {
        let url = try o.string("database")
        let count = try o.int("runs", default: 2000)
        let tasks = try o.int("tasks", default: 8)
        let batch = try o.int("batch", default: 16)
        let store = try await openStore(url: url, logger: quiet, connections: try o.int("connections", default: 4))
        _ = try await store.enqueueMany((0..<count).map { _ in NewRun(job: "bench-cycles") }, now: Date())
        let start = ContinuousClock.now
        let finished = try await withThrowingTaskGroup(of: Int.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var done = 0
                    var idle = 0
                    while idle < 3 {
                        let claimed = try await store.claimRuns(owner: "bench-\(t)", limit: batch, leaseSeconds: 600, now: Date())
                        if claimed.isEmpty { idle += 1; try await Task.sleep(for: .milliseconds(5)); continue }
                        idle = 0
                        var completions: [RunCompletion] = []
                        for c in claimed {
                            if c.answers.isEmpty {
                                let id = "\(c.run.id)-r"
                                _ = try await store.pause(c.lease, checkpoint: NewCheckpoint(superstep: 1, data: checkpointBytes), requests: [
                                    NewRequest(id: id, executorID: "gate", requestType: "Approval", requestData: Data(#"{"x":1}"#.utf8),
                                               responseType: "Bool", reviewers: ["ann@example.org"],
                                               tokens: [NewToken(tokenHash: "tok-\(id)", reviewer: "ann@example.org")]),
                                ], mail: [NewMail(messageID: "<\(id)@bench>", kind: .request, recipient: "ann@example.org",
                                                  raw: Data(repeating: 65, count: 1500), requestID: id, runID: c.run.id)],
                                    delivered: [], now: Date())
                                _ = try await store.answer(Answer(
                                    requestID: id, reviewer: "ann@example.org", verdict: .approve, response: Data("true".utf8),
                                    channel: .mail, via: "<reply-\(id)@mail>", tokenHash: "tok-\(id)", at: Date(),
                                    inbound: InboundRecord(dedupeKey: "<reply-\(id)@mail>", sender: "ann@example.org", outcome: .applied)))
                            } else {
                                try await store.saveCheckpoint(c.lease, checkpoint: NewCheckpoint(superstep: 2, data: checkpointBytes),
                                                               delivered: Array(c.answers.keys), now: Date())
                                completions.append(RunCompletion(lease: c.lease, status: .succeeded))
                            }
                        }
                        if !completions.isEmpty {
                            _ = try await store.finishMany(completions, now: Date())
                            done += completions.count
                        }
                        if done >= count { break }
                    }
                    return done
                }
            }
            var total = 0
            for try await n in group { total += n }
            return total
        }
        let seconds = (ContinuousClock.now - start).seconds
        await store.close()
        emit(json(["benchmark": "pause_answer_resume_cycles", "backend": backendName(url), "runs": count,
                   "completed": finished, "parallel_runners": tasks, "claim_batch": batch, "seconds": seconds,
                   "per_second": Double(finished) / seconds, "target_per_second": 2820]))
    }

    /// Child process of `claims`: claims batches and completes them until the queue is empty.
    static func drain(_ o: Options) async throws {
        let url = try o.string("database")
        let batch = try o.int("batch", default: 500)
        let owner = o.string("owner", default: "drain-\(ProcessInfo.processInfo.processIdentifier)")
        let store = try await openStore(url: url, logger: quiet, connections: 1)
        var count = 0
        var first: Double?
        var last = Date().timeIntervalSince1970
        var empty = 0
        while empty < 3 {
            let claimed = try await store.claimRuns(owner: owner, limit: batch, leaseSeconds: 60, now: Date())
            if claimed.isEmpty { empty += 1; try await Task.sleep(for: .milliseconds(10)); continue }
            empty = 0
            if first == nil { first = Date().timeIntervalSince1970 }
            let lost = try await store.finishMany(claimed.map { RunCompletion(lease: $0.lease, status: .succeeded) }, now: Date())
            count += claimed.count - lost.count
            last = Date().timeIntervalSince1970
        }
        await store.close()
        emit(json(["owner": owner, "completed": count, "first": first ?? last, "last": last]))
    }

    /// Claim-and-complete of empty runs with `processes` runner processes (batch claims, batch completes).
    static func claims(_ o: Options) async throws {
        let url = try o.string("database")
        let count = try o.int("runs", default: 50_000)
        let processes = try o.int("processes", default: 2)
        let batch = try o.int("batch", default: 500)
        let store = try await openStore(url: url, logger: quiet, connections: 1)
        var left = count
        while left > 0 {
            let n = min(left, 5000)
            _ = try await store.enqueueMany((0..<n).map { _ in NewRun(job: "bench-empty") }, now: Date())
            left -= n
        }
        await store.close()
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        var children: [(Process, Pipe)] = []
        for i in 0..<processes {
            let p = Process()
            p.executableURL = executable
            p.arguments = ["drain", "--database", url, "--batch", String(batch), "--owner", "drain-\(i)"]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            children.append((p, pipe))
        }
        var firsts: [Double] = []
        var lasts: [Double] = []
        var completed = 0
        for (p, pipe) in children {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            completed += object["completed"] as? Int ?? 0
            firsts.append(object["first"] as? Double ?? 0)
            lasts.append(object["last"] as? Double ?? 0)
        }
        let seconds = (lasts.max() ?? 0) - (firsts.min() ?? 0)
        emit(json(["benchmark": "claim_and_complete_empty_runs", "backend": backendName(url), "processes": processes,
                   "claim_batch": batch, "runs": count, "completed": completed, "seconds": seconds,
                   "per_second": Double(completed) / max(seconds, 1e-9), "target_per_second": 10_200]))
    }

    /// Queues `count` runs (for tests).
    static func enqueue(_ o: Options) async throws {
        let store = try await openStore(url: try o.string("database"), logger: quiet, connections: 1)
        let runs = try await store.enqueueMany((0..<(try o.int("count", default: 1))).map { _ in NewRun(job: o.string("job", default: "test")) },
                                               now: Date())
        for r in runs { emit("enqueued \(r.id)") }
        await store.close()
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
