import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff pending`.
struct PendingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pending", abstract: "List open requests: who is asked, due times, reminders sent and votes so far.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let store = environment.store
            var views: [RequestView] = []
            for request in try await store.pendingRequests() {
                views.append(RequestView(request, votes: try await store.votes(requestID: request.id)))
            }
            await store.close()
            if output.json { try Console.json(views); return }
            if views.isEmpty { Console.out("no pending requests"); return }
            let now = Date()
            Console.table(["REQUEST", "RUN", "STEP", "REVIEWERS", "QUORUM", "DUE", "REMINDERS", "VOTES", "TITLE"], views.map { v in
                let due = v.dueAt.map { Console.time($0) + ($0 < now ? " (overdue)" : "") } ?? "-"
                let reminders = String(v.remindersSent) + (v.remindAt.map { " (next \(Console.time($0)))" } ?? "")
                let votes = v.votes.isEmpty ? "-" : v.votes.map { "\($0.reviewer)=\($0.verdict)" }.joined(separator: ",")
                return [v.id, v.runID, v.step ?? "-", v.reviewers.joined(separator: ","), v.quorum, due, reminders, votes, v.title ?? ""]
            })
        }
    }
}
