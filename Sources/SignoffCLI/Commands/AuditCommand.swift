import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff audit verify [RUN]`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the tamper-evident event chain.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute each run's hash chain and report the first broken link (exit 1 if any).")

        @Argument(help: "One run (default: every run, newest 10000).")
        var run: String?

        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        struct Row: Encodable { var run: String; var events: Int; var intact: Bool; var firstBrokenSequence: Int?; var problem: String? }

        func run() async throws {
            try await reporting {
                try await global.withEnvironment { environment in
                    let store = environment.store
                    let ids: [String]
                    if let run { ids = [try await requireRun(store, run).id] } else {
                        ids = try await store.runs(filter: RunFilter(limit: 10000)).map(\.id)
                    }
                    var rows: [Row] = []
                    for id in ids {
                        let r = try await store.verifyAudit(runID: id)
                        rows.append(Row(run: id, events: r.eventCount, intact: r.isIntact, firstBrokenSequence: r.firstBrokenSequence, problem: r.problem))
                    }
                    if output.json { try Console.json(rows) } else {
                        for r in rows {
                            Console.out(r.intact ? "\(r.run): \(r.events) events, chain intact"
                                                 : "\(r.run): BROKEN at event \(r.firstBrokenSequence ?? 0): \(r.problem ?? "")")
                        }
                    }
                    if rows.contains(where: { !$0.intact }) { throw ExitCode(ExitStatus.failure.rawValue) }
                }
            }
        }
    }
}
