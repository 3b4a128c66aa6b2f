import ArgumentParser
import Foundation
import SignoffRunner

/// `signoff run [--concurrency N] [--max-runs N]`.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run what is runnable, fire due request timers, send mail, then exit.",
        discussion: "Meant for a timer (signoff-run.timer). Exit 0 also when there was nothing to do; runs that fail are recorded as failed (see `signoff history`).")

    @Option(help: "How many runs to execute at the same time.")
    var concurrency: Int = 1

    @Option(name: .customLong("max-runs"), help: "Stop after claiming this many runs.")
    var maxRuns: Int?

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let maxRuns, maxRuns < 1 { throw ValidationError("--max-runs must be at least 1") }
    }

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let runner = BatchRunner(environment: environment)
            let report = try await runner.runPass(concurrency: concurrency, maxRuns: maxRuns,
                                                  progress: { Console.progress($0) })
            await environment.store.close()
            if output.json {
                try Console.json(report)
            } else {
                Console.out("runs: \(report.claimed) claimed, \(report.succeeded) succeeded, \(report.waiting) waiting, \(report.rejected) rejected, \(report.failed) failed; mail: \(report.mailSent) sent, \(report.mailDeferred) deferred, \(report.mailFailed) failed, \(report.mailWithdrawn) withdrawn")
            }
        }
    }
}
