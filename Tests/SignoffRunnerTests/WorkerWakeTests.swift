import Foundation
import Testing
import SignoffTestSupport
@testable import SignoffRunner

/// `signoff worker` wakes as soon as a reply lands in the maildrop's `new/`, not at its next interval.
@Suite(.serialized)
struct WorkerWakeTests {
    /// How the worker watches `new/`: inotify, or the portable 200 ms poll (`SIGNOFF_WATCH=poll`).
    enum Watch: String, Sendable { case inotify, poll }

    struct Case: CustomTestStringConvertible, Sendable {
        var backend: Backend
        var watch: Watch
        var testDescription: String { "\(backend.rawValue), \(watch.rawValue)" }
    }

    @Test(arguments: [Case(backend: .sqlite, watch: .inotify), Case(backend: .postgres, watch: .inotify),
                      Case(backend: .sqlite, watch: .poll)])
    func replyLandingInNewWakesTheWorkerLongBeforeItsInterval(_ c: Case) async throws {
        let p = try Product.make(c.backend)
        defer { p.cleanUp() }
        let log = p.dir + "/worker.log"
        let worker = try startWorker(p, interval: "60s", watch: c.watch, log: log)
        defer { worker.terminate(SIGKILL) }
        func workerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        let id = p.ok("enqueue", "release-notes", "--input", "version=3.1.0")
        // The enqueue is a database change: the worker runs the job up to its approval step.
        let waiting = try await poll(seconds: 30) { p.runStatus(id) == "waiting" && !p.requestMails().isEmpty }
        try #require(waiting, "the worker did not bring the run to its approval step; log:\n\(workerLog())")
        let mail = try #require(p.requestMails().first)

        let sent = ContinuousClock.now
        try p.reply(to: mail, from: "editor@example.org", body: "APPROVE: ship it")
        let finished = try await poll(seconds: 20) { p.runStatus(id) == "succeeded" }
        let elapsed = ContinuousClock.now - sent
        #expect(finished, "the run did not finish within 20 s of the reply (the worker's interval is 60 s); status \(p.runStatus(id) ?? "?"); log:\n\(workerLog())")
        #expect(elapsed < .seconds(20), "the reply took \(elapsed) to be acted on")
        let archived = try FileManager.default.contentsOfDirectory(atPath: p.dir + "/var/archive")
        #expect(archived.count == 1, "the reply is archived: \(archived)")

        worker.terminate()  // SIGTERM
        let status = try await worker.exit(timeout: .seconds(15))
        #expect(status != nil, "the worker ignored SIGTERM")
        if let status { #expect(status == 0, "the worker exited \(status) on SIGTERM; log:\n\(workerLog())") }
    }

    @Test(arguments: [false, true])
    func folderWatchReportsAFileRenamedIntoTheFolder(_ forcePolling: Bool) async throws {
        let dir = try TestSupport.scratch("signoff-watch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/new", withIntermediateDirectories: true)
        let watch = FolderWatch(directories: [dir + "/new"], forcePolling: forcePolling)
        defer { watch.close() }
        #expect(watch.usesInotify == !forcePolling)

        // Nothing landed: a bounded wait ends by cancellation, reporting no event.
        let quiet = Task { await watch.next() }
        try await Task.sleep(for: .milliseconds(400))
        quiet.cancel()
        #expect(await quiet.value == false, "no file landed, yet the watch reported one")

        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/tmp/a"))
        let waiter = Task { await watch.next() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(rename(dir + "/tmp/a", dir + "/new/a") == 0)
        let limit = Task { try await Task.sleep(for: .seconds(5)); waiter.cancel() }
        let woke = await waiter.value
        limit.cancel()
        #expect(woke, "the watch did not report the file renamed into new/")
    }

    // MARK: Helpers

    func startWorker(_ p: Product, interval: String, watch: Watch, log: String) throws -> Subprocess {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SIGNOFF_CONFIG")
        env.removeValue(forKey: "SIGNOFF_DATABASE")
        if let database = p.database { env["SIGNOFF_DATABASE"] = database }
        env["USER"] = "tester"
        if watch == .poll { env["SIGNOFF_WATCH"] = "poll" } else { env.removeValue(forKey: "SIGNOFF_WATCH") }
        return try Subprocess(p.binary, ["worker", "--interval", interval], environment: env, directory: p.dir,
                              stdout: .file(log), stderr: .file(log))
    }

    /// Checks `condition` every 100 ms for up to `seconds`; true once it holds.
    func poll(seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }
}
