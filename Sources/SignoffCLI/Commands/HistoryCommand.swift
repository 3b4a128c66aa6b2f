import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff history [--job J] [--status S] [--since T] [--limit N]`.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "List runs, newest first.")

    @Option(help: "Only this job.")
    var job: String?

    @Option(help: "Only runs in this status (queued running waiting succeeded rejected failed cancelled expired); repeatable.")
    var status: [String] = []

    @Option(help: ArgumentHelp("Only runs created since: an ISO 8601 date or time, or a duration ago (24h, 7d).", valueName: "time"))
    var since: String?

    @Option(help: "At most this many runs.")
    var limit: Int = 50

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        for s in status where RunStatus(rawValue: s) == nil {
            throw ValidationError("--status \(s) is not a run status; use one of: \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let since, parseSince(since) == nil { throw ValidationError("--since takes an ISO 8601 date (2026-01-31) or a duration ago (24h), not `\(since)`") }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let runs = try await environment.store.runs(filter: RunFilter(
                job: job, statuses: status.compactMap { RunStatus(rawValue: $0) },
                since: since.flatMap { parseSince($0) }, limit: limit))
            await environment.store.close()
            let views = runs.map(RunView.init)
            if output.json { try Console.json(views); return }
            if views.isEmpty { Console.out("no runs"); return }
            Console.table(["RUN", "JOB", "STATUS", "ATTEMPT", "CREATED", "FINISHED", "ERROR"], views.map {
                [$0.id, $0.job, $0.status, String($0.attempt), Console.time($0.createdAt), Console.time($0.finishedAt),
                 String(($0.error ?? "").prefix(60))]
            })
        }
    }
}
