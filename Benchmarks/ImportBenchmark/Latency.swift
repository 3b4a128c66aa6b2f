// `ImportBenchmark latency`: the time from a reply landing in the maildrop's new/ to its run
// being runnable, with a real `signoff worker` (the release build next to this executable).
//
//   ImportBenchmark latency [--database URL]... [--samples 50] [--signoff PATH] [--interval 5s]
//                           [--watch inotify|poll]
//
// Without --database it measures SQLite (a file in a scratch installation) and, when
// SIGNOFF_BENCH_POSTGRES or SIGNOFF_TEST_POSTGRES is set, PostgreSQL (a fresh database created
// with psql when psql is found, else the URL as given). Per sample, the reply is written to tmp/
// and renamed into new/ (as an MTA delivers), then the database is polled every millisecond
// until the run is no longer `waiting` (runnable: queued, running or succeeded), then until it
// has succeeded. Between samples the worker idles for a random 0.2–0.6 s, as it would between
// real replies. Prints one JSON object; figures in milliseconds.
import Foundation
import SignoffTestSupport
import Logging
import SignoffStore

enum LatencyBenchmark {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ arguments: [String]) async throws {
        var samples = 50
        var databases: [String] = []
        var interval = "5s"
        var watch = "inotify"
        let env = ProcessInfo.processInfo.environment
        var signoff = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("signoff").path
        var it = arguments.makeIterator()
        while let a = it.next() {
            switch a {
            case "--samples": samples = max(1, Int(it.next() ?? "") ?? samples)
            case "--database": if let d = it.next() { databases.append(d) }
            case "--signoff": signoff = it.next() ?? signoff
            case "--interval": interval = it.next() ?? interval
            case "--watch": watch = it.next() ?? watch
            default:
                FileHandle.standardError.write(Data("usage: ImportBenchmark latency [--database URL]... [--samples N] [--signoff PATH] [--interval 5s] [--watch inotify|poll]\n".utf8))
                exit(64)
            }
        }
        guard FileManager.default.isExecutableFile(atPath: signoff) else {
            throw Failure(description: "no signoff binary at \(signoff): build it (`swift build -c release --product signoff`) or pass --signoff PATH")
        }
        if databases.isEmpty {
            databases = ["sqlite"]
            if let pg = env["SIGNOFF_BENCH_POSTGRES"] ?? env["SIGNOFF_TEST_POSTGRES"], !pg.isEmpty { databases.append(pg) }
        }
        var results: [Any] = []
        for database in databases {
            results.append(try await measure(database: database, samples: samples, signoff: signoff, interval: interval, watch: watch))
        }
        print(json([
            "benchmark": "reply_to_runnable_latency",
            "samples": samples,
            "worker_interval": interval,
            "watch": watch,
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "load_average_1m": loadAverage(),
            "results": results,
        ] as KeyValuePairs<String, Any>))
    }

    static let job = """
        name: latency
        description: One approval, nothing else.
        owner: ops@example.org
        input: { n: "0" }
        steps:
          - id: review
            approval:
              reviewers: [reviewer@example.org]
              subject: "Latency sample {{input.n}}"

        """

    static func measure(database: String, samples: Int, signoff: String, interval: String, watch: String) async throws -> Any {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-latency-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "SIGNOFF_CONFIG")
        environment.removeValue(forKey: "SIGNOFF_DATABASE")
        if watch == "poll" { environment["SIGNOFF_WATCH"] = "poll" } else { environment.removeValue(forKey: "SIGNOFF_WATCH") }
        var url = "sqlite:" + dir + "/var/signoff.sqlite"
        var dropDatabase: (() -> Void)?
        let postgres = database.hasPrefix("postgres")
        if database != "sqlite" { url = database }
        if postgres {
            if let psql = which("psql") {
                let name = "signoff_latency_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
                let created = try runProcess(psql, [database, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name)"], environment: environment)
                if created.status == 0 {
                    url = replaceDatabase(database, with: String(name))
                    dropDatabase = { _ = try? runProcess(psql, [database, "-qc", "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"], environment: environment) }
                }
            }
        }
        defer { dropDatabase?() }
        environment["SIGNOFF_DATABASE"] = url
        func signoffCommand(_ args: [String]) throws -> String {
            let r = try runProcess(signoff, args, environment: environment, currentDirectory: dir)
            guard r.status == 0 else { throw Failure(description: "signoff \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try signoffCommand(["init", dir])
        try job.write(toFile: dir + "/jobs/latency.yaml", atomically: true, encoding: .utf8)

        var logger = Logger(label: "signoff.bench.latency")
        logger.logLevel = .warning
        let store = try await openStore(url: url, logger: logger, connections: 1)

        // The worker, idle at first.
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: signoff)
        worker.arguments = ["worker", "--interval", interval]
        worker.environment = environment
        worker.currentDirectoryURL = URL(fileURLWithPath: dir)
        let log = dir + "/worker.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        worker.standardOutput = logHandle
        worker.standardError = logHandle
        try worker.run()
        defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }

        // Every sample's run waiting on its approval, with its request mail in the outbox.
        var runIDs: [String] = []
        for n in 0..<samples { runIDs.append(try signoffCommand(["enqueue", "latency", "--input", "n=\(n)"])) }
        var mails: [Int: String] = [:]
        let setupDeadline = Date().addingTimeInterval(120)
        while mails.count < samples {
            guard Date() < setupDeadline, worker.isRunning else {
                throw Failure(description: "the worker brought \(mails.count) of \(samples) runs to their approval step; log: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
            for mail in outbox(dir) where mail.contains("Reply-To: approvals+") {
                if let range = mail.range(of: "Latency sample "), let n = Int(mail[range.upperBound...].prefix { $0.isNumber }) { mails[n] = mail }
            }
        }
        for id in runIDs {
            while try await store.run(id: id)?.status != .waiting { try await Task.sleep(for: .milliseconds(50)) }
        }

        var runnable: [Double] = []
        var finished: [Double] = []
        let clock = ContinuousClock()
        for n in 0..<samples {
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...600)))
            let reply = ReviewerReply.text(to: mails[n]!, from: "reviewer@example.org", body: "APPROVE")
            let name = "\(Int(Date().timeIntervalSince1970)).M\(n)P\(getpid()).bench"
            let tmp = dir + "/var/maildrop/tmp/" + name
            try Data(reply.utf8).write(to: URL(fileURLWithPath: tmp))
            let start = clock.now
            guard rename(tmp, dir + "/var/maildrop/new/" + name) == 0 else { throw Failure(description: "cannot rename \(tmp) into new/") }
            let deadline = start + .seconds(60)
            var sawRunnable = false
            while clock.now < deadline {
                let status = try await store.run(id: runIDs[n])?.status
                if !sawRunnable, status != .waiting {
                    runnable.append(milliseconds(clock.now - start))
                    sawRunnable = true
                }
                if status == .succeeded {
                    finished.append(milliseconds(clock.now - start))
                    break
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            guard sawRunnable else { throw Failure(description: "sample \(n): the run stayed waiting for 60 s after its reply") }
        }
        worker.terminate()
        worker.waitUntilExit()
        let exitStatus = worker.terminationStatus
        await store.close()
        return [
            "database": postgres ? "postgres" : "sqlite",
            "reply_to_runnable_ms": stats(runnable),
            "reply_to_succeeded_ms": stats(finished),
            "worker_exit_on_sigterm": Int(exitStatus),
        ] as KeyValuePairs<String, Any>
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func stats(_ values: [Double]) -> Any {
        let s = values.sorted()
        guard !s.isEmpty else { return KeyValuePairs<String, Any>(dictionaryLiteral: ("count", 0)) }
        func at(_ q: Double) -> Double { s[min(s.count - 1, Int((q * Double(s.count - 1)).rounded()))] }
        return ["count": s.count, "min": s[0], "median": at(0.5), "p95": at(0.95), "max": s[s.count - 1]] as KeyValuePairs<String, Any>
    }

    static func outbox(_ dir: String) -> [String] {
        let folder = dir + "/var/outbox"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.compactMap { try? String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }
    }

    /// The URL with another database name (keeps the query, e.g. `?host=/socket&port=…`).
    static func replaceDatabase(_ url: String, with name: String) -> String {
        let parts = url.split(separator: "?", maxSplits: 1).map(String.init)
        guard let schemeEnd = parts[0].range(of: "://")?.upperBound else { return url }
        let head = parts[0]
        let base = head[schemeEnd...].firstIndex(of: "/").map { String(head[..<$0]) } ?? head
        return base + "/" + name + (parts.count > 1 ? "?" + parts[1] : "")
    }

    static func which(_ name: String) -> String? {
        if let bin = ProcessInfo.processInfo.environment["PG_TEST_BIN"], FileManager.default.isExecutableFile(atPath: bin + "/" + name) {
            return bin + "/" + name
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    struct ProcessResult {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func runProcess(_ executable: String, _ arguments: [String], environment: [String: String],
                           currentDirectory: String? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Short outputs: read stderr after stdout's end (both well under a pipe's buffer).
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }
}
