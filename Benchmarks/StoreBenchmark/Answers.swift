import Foundation
import SignoffStore
import Synchronization

/// `StoreBenchmark answers --database URL [--answers 10000 --batch 500 --tasks 64 --connections 8 --phases batched,concurrent]`
///
/// Answers recorded per second, two ways, each on its own set of `answers` runs paused on one
/// request (one reviewer, one token, quorum any), so every answer decides its request and queues
/// its run:
/// - `answers_batched`: the import's path, `recordInboundBatch` of `batch` answers at a time (each
///   with its inbound row), one batch after the other;
/// - `answers_concurrent`: `tasks` tasks calling `answer` one answer at a time (the runner's and the
///   CLI's path; concurrent calls are coalesced by the store).
/// Setup (runs, pauses) is not timed.
extension Benchmarks {
    static func answers(_ o: Options) async throws {
        let url = try o.string("database")
        let count = try o.int("answers", default: 10_000)
        let batch = max(1, try o.int("batch", default: 500))
        let tasks = max(1, try o.int("tasks", default: 64))
        let connections = try o.int("connections", default: 8)
        let phases = Set(o.string("phases", default: "batched,concurrent").split(separator: ",").map(String.init))
        let store = try await openStore(url: url, logger: quiet, connections: connections)
        let backend = backendName(url)
        let load = { (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "" }

        // Batched, as the import writes them.
        if phases.contains("batched") {
            let batchedIDs = try await pausedRequests(store, count: count, tag: "b")
            let batchedAnswers = batchedIDs.map { answer(for: $0) }
            let start = ContinuousClock.now
            let cpu = cpuSeconds()
            var decided = 0
            for chunk in stride(from: 0, to: batchedAnswers.count, by: batch) {
                let writes = batchedAnswers[chunk..<min(chunk + batch, batchedAnswers.count)].map { InboundWrite(.answer($0)) }
                for result in try await store.recordInboundBatch(writes, now: Date()) {
                    if case .answered(let r) = result, r.decided { decided += 1 }
                }
        }
        let seconds = (ContinuousClock.now - start).seconds
        emit(json(["benchmark": "answers_batched", "backend": backend, "answers": count, "decided": decided, "batch": batch,
                   "seconds": seconds, "client_cpu_us_per_answer": (cpuSeconds() - cpu) * 1e6 / Double(count),
                   "per_second": Double(count) / seconds, "target_per_second": 25_000, "load": load()]))
        }

        // One at a time from many tasks.
        if phases.contains("concurrent") {
            let singleIDs = try await pausedRequests(store, count: count, tag: "s")
            let singleAnswers = singleIDs.map { answer(for: $0) }
            let next = AnswerCounter()
            let start = ContinuousClock.now
            let cpu = cpuSeconds()
            let decided = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        var n = 0
                        while true {
                            let i = next.take()
                            if i >= singleAnswers.count { return n }
                            if try await store.answer(singleAnswers[i]).decided { n += 1 }
                        }
                    }
                }
                var total = 0
                for try await n in group { total += n }
                return total
        }
        let seconds = (ContinuousClock.now - start).seconds
        emit(json(["benchmark": "answers_concurrent", "backend": backend, "answers": count, "decided": decided, "tasks": tasks,
                   "connections": backend == "postgres" ? connections : 1, "seconds": seconds,
                   "client_cpu_us_per_answer": (cpuSeconds() - cpu) * 1e6 / Double(count),
                   "per_second": Double(count) / seconds, "load": load()]))
        }
        await store.close()
    }

    /// User + system CPU time of this process so far (the machine may be shared: wall time alone misleads).
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The answer the benchmark records for a request: an approval by mail with its token and inbound row.
    private static func answer(for requestID: String) -> Answer {
        let via = "<reply-\(requestID)@mail.example.org>"
        return Answer(requestID: requestID, reviewer: "ann@example.org", verdict: .approve, response: Data(#"{"approved":true}"#.utf8),
                      reason: "fine", channel: .mail, via: via, tokenHash: "tok-\(requestID)", at: Date(),
                      inbound: InboundRecord(dedupeKey: via, sender: "ann@example.org", outcome: .applied))
    }

    /// Enqueues `count` runs and pauses each on one request; returns the request ids.
    private static func pausedRequests(_ store: any RunStore, count: Int, tag: String) async throws -> [String] {
        _ = try await store.enqueueMany((0..<count).map { _ in NewRun(job: "bench-answers-\(tag)") }, now: Date())
        var ids: [String] = []
        while ids.count < count {
            let claimed = try await store.claimRuns(owner: "bench-\(tag)", limit: 500, leaseSeconds: 600, now: Date())
            if claimed.isEmpty { break }
            ids += try await withThrowingTaskGroup(of: String.self) { group in
                for c in claimed {
                    group.addTask {
                        let id = "\(c.run.id)-\(tag)"
                        _ = try await store.pause(c.lease, checkpoint: nil, requests: [
                            NewRequest(id: id, executorID: "gate", requestType: "Approval", requestData: Data(#"{"x":1}"#.utf8),
                                       responseType: "Bool", reviewers: ["ann@example.org"],
                                       tokens: [NewToken(tokenHash: "tok-\(id)", reviewer: "ann@example.org")]),
                        ], mail: [], delivered: [], now: Date())
                        return id
                    }
                }
                var out: [String] = []
                for try await id in group { out.append(id) }
                return out
            }
        }
        return ids
    }
}

/// Hands out indexes to the benchmark's tasks.
final class AnswerCounter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}
