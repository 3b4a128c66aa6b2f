// Engine micro-benchmarks (the shapes of the MAF peer scripts in shared/peers/maf/maf_bench.py).
// Prints one JSON object. Build with: swift build -c release --product EngineBenchmark
// Usage: EngineBenchmark [scale]   (SIGNOFF_BENCH_DIR=/dev/shm to take the disk out of the file runs)
import Foundation
import SignoffEngine
import Synchronization

let scale: Double = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 1 : 1

/// Sends itself i + 1 until `n`, then yields i.
struct SelfLoop: Executor {
    let id: String
    let n: Int
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { [n] i, ctx in
            if i < n { try ctx.send(i + 1) } else { try ctx.yieldOutput(i) }
        }
        h.sends(Int.self)
        h.yields(Int.self)
    }
}

/// Forwards i + 1.
struct Relay: Executor {
    let id: String
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { i, ctx in try ctx.send(i + 1) }
        h.sends(Int.self)
    }
}

/// Sends k integers in one superstep.
struct Burst: Executor {
    let id: String
    let k: Int
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { [k] _, ctx in for j in 0..<k { try ctx.send(j) } }
        h.sends(Int.self)
    }
}

final class Tally: Sendable {
    let count = Atomic<Int>(0)
}

/// Counts what reaches the end of the chain.
struct Last: Executor {
    let id: String
    let tally: Tally
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { [tally] _, _ in tally.count.add(1, ordering: .relaxed) }
    }
}

/// Passes an int around the ring until `hops`, then yields it.
struct RingNode: Executor {
    let id: String
    let hops: Int
    func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { [hops] i, ctx in
            if i < hops { try ctx.send(i + 1) } else { try ctx.yieldOutput(i) }
        }
        h.sends(Int.self)
        h.yields(Int.self)
    }
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func selfLoop(_ n: Int, storage: (any CheckpointStorage)? = nil) throws -> Workflow {
    try WorkflowBuilder(name: "self-loop").addExecutor(SelfLoop(id: "loop", n: n)).addEdge("loop", "loop")
        .setStart("loop").maxSupersteps(n + 10).build()
}

func check(_ ok: Bool, _ what: String) {
    if !ok { FileHandle.standardError.write(Data("benchmark check failed: \(what)\n".utf8)); exit(1) }
}

func rounded(_ x: Double) -> Double { (x * 10).rounded() / 10 }

/// 1) Self-loop: one message per superstep.
func selfLoopBench(_ report: inout [String: Any], tmp: URL) async throws {
        let n = Int(100_000 * scale)
        let wf = try selfLoop(n)
        var result: RunResult?
        _ = try await wf.run(0)  // warm-up
        let dt = try await seconds { result = try await wf.run(0) }
        check(result?.outputs(as: Int.self) == [n], "self-loop output")
        report["self_loop"] = ["supersteps": n + 1, "seconds": dt, "supersteps_per_s": rounded(Double(n + 1) / dt)]
}

/// 1b) Self-loop, streaming every event.
func streamingBench(_ report: inout [String: Any], tmp: URL) async throws {
        let n = Int(20_000 * scale)
        let wf = try selfLoop(n)
        var events = 0
        let dt = try await seconds { for try await _ in wf.runStreaming(0) { events += 1 } }
        report["self_loop_streaming"] = ["supersteps": n + 1, "events": events, "seconds": dt,
                                         "supersteps_per_s": rounded(Double(n + 1) / dt)]
}

/// 2) Chain of 10: a burst of k messages through 9 hops.
func burstBench(_ report: inout [String: Any], tmp: URL) async throws {
        let k = Int(10_000 * scale)
        let tally = Tally()
        let relays = (0..<8).map { "r\($0)" }
        let b = WorkflowBuilder(name: "chain").addExecutor(Burst(id: "start", k: k))
        for r in relays { b.addExecutor(Relay(id: r)) }
        b.addExecutor(Last(id: "last", tally: tally)).addChain(["start"] + relays + ["last"]).setStart("start")
        let wf = try b.build()
        let dt = try await seconds { _ = try await wf.run(0) }
        check(tally.count.load(ordering: .relaxed) == k, "burst count")
        let deliveries = k * 9 + 1
        report["chain_burst"] = ["messages": k, "deliveries": deliveries, "seconds": dt,
                                 "deliveries_per_s": rounded(Double(deliveries) / dt)]
}

/// 3) Ring of 10: one int passed `hops` times.
func ringBench(_ report: inout [String: Any], tmp: URL) async throws {
        let hops = Int(10_000 * scale)
        let ids = (0..<10).map { "n\($0)" }
        let b = WorkflowBuilder(name: "ring")
        for id in ids { b.addExecutor(RingNode(id: id, hops: hops)) }
        let wf = try b.addChain(ids).addEdge("n9", "n0").setStart("n0").maxSupersteps(hops + 10).build()
        var result: RunResult?
        let dt = try await seconds { result = try await wf.run(0) }
        check(result?.outputs(as: Int.self) == [hops], "ring output")
        report["ring"] = ["hops": hops, "seconds": dt, "supersteps_per_s": rounded(Double(hops + 1) / dt)]
}

/// 4) Self-loop with checkpoint storages.
func checkpointBench(_ report: inout [String: Any], tmp: URL) async throws {
        let n = Int(1_000 * scale)
        let memory = InMemoryCheckpointStorage()
        let durable = try FileCheckpointStorage(directory: tmp.appendingPathComponent("durable"))
        let fast = try FileCheckpointStorage(directory: tmp.appendingPathComponent("fast"), durable: false)
        let storages: [(String, any CheckpointStorage)] = [
            ("checkpoint_memory", memory), ("checkpoint_file_fsync", durable), ("checkpoint_file_no_fsync", fast),
        ]
        for (name, storage) in storages {
            let wf = try selfLoop(n)
            var result: RunResult?
            let dt = try await seconds { result = try await wf.run(0, options: RunOptions(checkpointStorage: storage)) }
            check(result?.outputs(as: Int.self) == [n], "\(name) output")
            let saved = try await storage.list(runID: result!.runID).count
            check(saved == n + 2, "\(name) saved \(saved) checkpoints")
            report[name] = ["supersteps": n + 1, "checkpoints": saved, "seconds": dt,
                            "supersteps_per_s": rounded(Double(n + 1) / dt)]
        }
}

/// 4c) Where a file checkpoint's time goes: encode + verify-decode, and write + rename without fsync.
func checkpointCostBench(_ report: inout [String: Any], tmp: URL) async throws {
    let result = try await selfLoop(3).run(0)
    let cp = result.checkpoint
    let count = 500
    var bytes = 0
    let codec = try await seconds {
        for _ in 0..<count {
            let data = try cp.encoded()
            bytes = data.count
            _ = try Checkpoint.decode(from: data)
        }
    }
    let dir = tmp.appendingPathComponent("nofsync")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let payload = [UInt8](repeating: 65, count: bytes)
    let io = await seconds {
        for i in 0..<count {
            let path = dir.appendingPathComponent("f\(i)").path
            let fd = open(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            rename(path + ".tmp", path)
        }
    }
    report["checkpoint_cost"] = ["checkpoint_bytes": bytes,
                                 "microseconds_encode_and_verify": rounded(codec / Double(count) * 1e6),
                                 "microseconds_write_rename_no_fsync": rounded(io / Double(count) * 1e6)]
}

/// 4b) What one fsync costs here: write 1 KiB + fsync + rename, 200 times.
func fsyncBench(_ report: inout [String: Any], tmp: URL) async throws {
        let dir = tmp.appendingPathComponent("fsync")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let payload = [UInt8](repeating: 65, count: 1024)
        let count = 200
        let dt = await seconds {
            for i in 0..<count {
                let path = dir.appendingPathComponent("f\(i)").path
                let fd = open(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                fsync(fd)
                close(fd)
                rename(path + ".tmp", path)
                let dfd = open(dir.path, O_RDONLY)
                fsync(dfd)
                close(dfd)
            }
        }
        report["fsync_cost"] = ["writes": count, "microseconds_per_write_fsync_rename_dirfsync": rounded(dt / Double(count) * 1e6)]
}

/// Runs every benchmark and prints one JSON object.
enum EngineBenchmark {
    static func run() async throws {
        var report: [String: Any] = ["swift_engine": "SignoffEngine", "scale": scale]
        // SIGNOFF_BENCH_DIR picks the file system for the file checkpoint runs (default: the temp folder).
        let base = ProcessInfo.processInfo.environment["SIGNOFF_BENCH_DIR"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        let tmp = base.appendingPathComponent("signoff-bench-\(UUID().uuidString)")
        report["checkpoint_dir"] = base.path
        defer { try? FileManager.default.removeItem(at: tmp) }
        try await selfLoopBench(&report, tmp: tmp)
        try await streamingBench(&report, tmp: tmp)
        try await burstBench(&report, tmp: tmp)
        try await ringBench(&report, tmp: tmp)
        try await checkpointBench(&report, tmp: tmp)
        try await checkpointCostBench(&report, tmp: tmp)
        try await fsyncBench(&report, tmp: tmp)
        let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
