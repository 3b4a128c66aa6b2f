import ArgumentParser
import Foundation
import Logging
import SignoffExamples
import SignoffRunner
import Synchronization

/// The `signoff` command line as a library, so a Swift program can embed it with its own
/// registered executors:
///
/// ```swift
/// var registry = ExecutorRegistry.seedExamples
/// registry.register("resize-images") { call in .string("done") }
/// await SignoffCLI.main(registry: registry)
/// ```
public enum SignoffCLI {
    static let registryBox = Mutex(ExecutorRegistry.seedExamples)

    /// The executors `executor:` steps can name in this process.
    public static var registry: ExecutorRegistry { registryBox.withLock { $0 } }

    /// Parses `arguments` (default: the process's), runs the command and exits with the documented
    /// exit code: 0 ok, 1 failure, 2 usage, 3 not found, 4 conflict.
    public static func main(arguments: [String]? = nil, registry: ExecutorRegistry = .seedExamples) async -> Never {
        registryBox.withLock { $0 = registry }
        let args = arguments ?? Array(CommandLine.arguments.dropFirst())
        bootstrapLogging(verbose: args.contains("--verbose") || args.contains("-v"),
                         long: args.first == "worker")
        do {
            var command = try SignoffCommand.parseAsRoot(args)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let code = SignoffCommand.exitCode(for: error)
            if code == .validationFailure {
                // Argument Parser's usage errors exit 64; Signoff documents 2.
                let message = SignoffCommand.fullMessage(for: error)
                FileHandle.standardError.write(Data((message + "\n").utf8))
                exit(ExitStatus.usage.rawValue)
            }
            SignoffCommand.exit(withError: error)
        }
    }

    static func bootstrapLogging(verbose: Bool, long: Bool) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : (long ? .info : .warning)
            return handler
        }
    }
}

extension ExecutorRegistry {
    /// The seeds' example programs, registered under their names (`approval-gate`,
    /// `number-guessing`, `form-collector`); `jobs/` has a job for each.
    public static var seedExamples: ExecutorRegistry {
        var registry = ExecutorRegistry()
        registry.register("approval-gate", summary: "the seed's approval gate: asks to approve an operation",
                          workflow: { try SeedExamples.approvalWorkflow() },
                          input: { call in call.arguments["operation"]?.description ?? "the operation" })
        registry.register("number-guessing", summary: "the seed's number-guessing judge: asks for guesses until one is right",
                          workflow: { try SeedExamples.guessingWorkflow(targetNumber: 42) },
                          input: { call in Int(call.arguments["first_guess"]?.description ?? "") ?? 50 })
        registry.register("form-collector", summary: "the seed's form collector: asks for a name, then an email",
                          workflow: { try SeedExamples.formWorkflow() },
                          input: { call in call.arguments["form"]?.description ?? "registration" })
        return registry
    }
}

/// The root command.
struct SignoffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signoff",
        abstract: "Run batch workflows that stop for a human decision by email, and go on when the answer arrives.",
        discussion: """
            Configuration is read from --config, $SIGNOFF_CONFIG, ./signoff.yaml or /etc/signoff/signoff.yaml. The database (sqlite:PATH, a postgres:// URL or a libpq keyword string) comes from `database:`, overridden by --database or $SIGNOFF_DATABASE.

            EXIT CODES
              0  ok (including "nothing to do")
              1  failure (a run, the database, mail, a file)
              2  usage (bad options; a job file or signoff.yaml with problems)
              3  not found (no such job, run, request or configuration)
              4  conflict (e.g. rerun of a run that is not failed)

            Every listing takes --json. docs/cli.md describes every command.
            """,
        subcommands: [InitCommand.self, JobsCommand.self, EnqueueCommand.self, RunCommand.self, ImportCommand.self,
                      WorkerCommand.self, SendCommand.self, PendingCommand.self, RespondCommand.self,
                      HistoryCommand.self, ShowCommand.self, RerunCommand.self, CancelCommand.self,
                      MetricsCommand.self, SystemdCommand.self, AuditCommand.self])
}
