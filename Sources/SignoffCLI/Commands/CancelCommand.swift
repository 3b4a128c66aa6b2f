import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff cancel RUN [--reason R]`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a queued, running or waiting run; its open requests are withdrawn.",
        discussion: "Exit 3 for an unknown run, 4 when the run has already ended.")

    @Argument(help: "The run id.")
    var run: String

    @Option(help: "Why (recorded in the run's events).")
    var reason: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("Who cancels.", valueName: "email"))
    var actor: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reporting {
            try await global.withEnvironment { environment in
                let store = environment.store
                let old = try await requireRun(store, run)
                guard !old.status.isTerminal else {
                    throw RunnerError.conflict("cancel.state", "run \(run) already ended (\(old.status.rawValue)); nothing to cancel")
                }
                let cancelled = try await store.cancel(runID: run, by: actor ?? environment.config.user, reason: reason, now: Date())
                Console.out("run \(cancelled.id) \(cancelled.status.rawValue)")
            }
        }
    }
}
