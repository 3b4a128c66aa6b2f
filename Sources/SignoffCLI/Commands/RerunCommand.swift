import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff rerun RUN`.
struct RerunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun", abstract: "Queue a failed, cancelled or expired run again, as a new attempt linked to the old one.",
        discussion: "Prints the new run's id. Exit 3 for an unknown run, 4 when the run is not failed, cancelled or expired.")

    @Argument(help: "The run id.")
    var run: String

    @Flag(name: .customLong("from-checkpoint"), help: "Continue from the old run's last checkpoint (the steps that had finished are not run again) instead of from the start.")
    var fromCheckpoint = false

    @Option(name: .customLong("as"), help: ArgumentHelp("Who asks for the rerun.", valueName: "email"))
    var requester: String?

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reporting {
            try await global.withEnvironment { environment in
                let store = environment.store
                let old = try await requireRun(store, run)
                guard [.failed, .cancelled, .expired].contains(old.status) else {
                    throw RunnerError.conflict("rerun.state", "run \(run) is \(old.status.rawValue)\(old.status == .waiting ? " (waiting for input)" : ""); only failed, cancelled or expired runs can be rerun")
                }
                var checkpoint: CheckpointRecord?
                if fromCheckpoint {
                    checkpoint = try await store.latestCheckpoint(runID: run)
                    if checkpoint == nil {
                        throw RunnerError.conflict("rerun.no_checkpoint", "run \(run) has no checkpoint to continue from (it failed before its first superstep); rerun it without --from-checkpoint")
                    }
                }
                let new = try await store.rerun(runID: run, requestedBy: requester ?? environment.config.user, now: Date())
                if let checkpoint {
                    try await RunCheckpoints.carryOver(checkpoint, to: new.id, store: store, now: Date())
                }
                if output.json { try Console.json(RunView(new)) } else { Console.out(new.id) }
            }
        }
    }
}
