import ArgumentParser
import Dispatch
import Foundation
import SignoffRunner
import Synchronization

/// `signoff worker`.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run, import and send continuously (for signoff-worker.service).",
        discussion: "On SIGTERM or SIGINT it stops taking work, finishes what is in flight, and exits 0.")

    @Option(help: ArgumentHelp("Pause between passes.", valueName: "duration"))
    var interval: String = "5s"

    @Option(help: "How many runs to execute at the same time.")
    var concurrency: Int = 2

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard DurationText.seconds(interval) != nil else { throw ValidationError("--interval takes a duration like 5s or 1m, not `\(interval)`") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
    }

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let stop = StopFlag()
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let sources = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { stop.set() }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            let runner = BatchRunner(environment: environment)
            let seconds = DurationText.seconds(interval) ?? 5
            environment.logger.info("worker started", metadata: ["owner": "\(environment.owner)"])
            // Start listening for new work (NOTIFY on PostgreSQL, files landing in the maildrop's and
            // the inbox's new/) before the first pass, so nothing is missed.
            _ = try? await environment.store.waitForWork(timeout: 0)
            let signal = WorkSignal.forWorker(environment)
            defer { signal.close() }
            environment.logger.debug("watching for replies", metadata: ["inotify": "\(signal.folders.usesInotify)"])
            while !stop.isSet {
                var busy = false
                do {
                    let report = try await runner.runPass(concurrency: concurrency, maxRuns: concurrency * 4)
                    if stop.isSet { break }
                    let imported = try await ImportCommand.importPass(environment)
                    // Answers just recorded (or a full batch of runs) mean more work: go again at once.
                    busy = imported.outcomes["applied", default: 0] > 0 || report.claimed >= concurrency * 4
                } catch {
                    environment.logger.error("pass failed; retrying after the interval", metadata: ["error": "\(error)"])
                }
                if busy { continue }
                // Wait out the interval, but wake at once when the store reports new work (a run
                // enqueued or answered, mail queued) or a reply lands in new/, checking for a stop
                // signal every 0.2 s.
                var waited = 0.0
                while waited < seconds, !stop.isSet {
                    let started = Date()
                    if await signal.wait(timeout: 0.2) != .timeout { break }
                    waited += max(0.2, Date().timeIntervalSince(started))
                }
            }
            environment.logger.info("worker stopping: no new work taken")
            await environment.store.close()
        }
    }
}

/// Set once by a signal handler, read by the loop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
}
