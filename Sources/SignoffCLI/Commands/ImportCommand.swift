import ArgumentParser
import Foundation
import SignoffRunner

/// `signoff import`.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Read the maildrop and the inbox, record answers, then exit.",
        discussion: "Each message is claimed, classified, recorded, and moved to the archive (or the quarantine with a reason file). Decided runs are queued for `signoff run`.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let summary = try await Self.importPass(environment)
            await environment.store.close()
            if output.json {
                try Console.json(summary)
            } else {
                let counts = summary.outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                var line = "import: " + (counts.isEmpty ? "nothing to import" : counts.joined(separator: ", "))
                if summary.errors > 0 { line += "; \(summary.errors) failed and stay claimed for the next pass (see the log)" }
                Console.out(line)
            }
        }
    }

    /// One importer pass; returns counts by outcome.
    static func importPass(_ environment: RunnerEnvironment) async throws -> ImportPass.Summary {
        try await Importer.run(environment)
    }
}
