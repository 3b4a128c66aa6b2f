import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff metrics [--textfile PATH]`.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Print metrics in the Prometheus text format (or write them for node_exporter's textfile collector).")

    @Option(help: ArgumentHelp("Write to this file atomically instead of stdout (e.g. /var/lib/node_exporter/textfile/signoff.prom).", valueName: "path"))
    var textfile: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reporting {
            try await global.withEnvironment { environment in
                let store = environment.store
                let now = Date()
                let runs = try await store.runs(filter: RunFilter(limit: 1_000_000))
                var byStatus: [String: Int] = Dictionary(uniqueKeysWithValues: RunStatus.allCases.map { ($0.rawValue, 0) })
                var byJob: [String: [String: Int]] = [:]
                for r in runs {
                    byStatus[r.status.rawValue, default: 0] += 1
                    byJob[r.job, default: [:]][r.status.rawValue, default: 0] += 1
                }
                let pending = try await store.pendingRequests()
                let oldest = pending.map(\.createdAt).min().map { now.timeIntervalSince($0) } ?? 0
                let overdue = pending.filter { ($0.dueAt ?? .distantFuture) < now }.count
                var decisions: [String: Int] = [:]
                for r in runs.prefix(2000) {
                    for q in try await store.requests(runID: r.id) where q.status != .pending {
                        decisions[q.decision ?? q.status.rawValue, default: 0] += 1
                    }
                }
                let dueMail = try await store.dueMail(now: now, limit: 100_000).count
                var lines: [String] = []
                lines += ["# HELP signoff_runs Runs by status.", "# TYPE signoff_runs gauge"]
                lines += byStatus.sorted { $0.key < $1.key }.map { "signoff_runs{status=\"\($0.key)\"} \($0.value)" }
                lines += ["# HELP signoff_job_runs Runs by job and status.", "# TYPE signoff_job_runs gauge"]
                for (job, counts) in byJob.sorted(by: { $0.key < $1.key }) {
                    lines += counts.sorted { $0.key < $1.key }.map { "signoff_job_runs{job=\"\(Self.escape(job))\",status=\"\($0.key)\"} \($0.value)" }
                }
                lines += ["# HELP signoff_pending_requests Requests waiting for people.", "# TYPE signoff_pending_requests gauge",
                          "signoff_pending_requests \(pending.count)",
                          "# HELP signoff_overdue_requests Pending requests past their deadline.", "# TYPE signoff_overdue_requests gauge",
                          "signoff_overdue_requests \(overdue)",
                          "# HELP signoff_oldest_pending_request_age_seconds Age of the oldest pending request.",
                          "# TYPE signoff_oldest_pending_request_age_seconds gauge",
                          "signoff_oldest_pending_request_age_seconds \(Int(oldest))",
                          "# HELP signoff_decisions Decided requests by outcome (recent runs).", "# TYPE signoff_decisions gauge"]
                lines += decisions.sorted { $0.key < $1.key }.map { "signoff_decisions{decision=\"\(Self.escape($0.key))\"} \($0.value)" }
                lines += ["# HELP signoff_outbox_due Mail waiting to be sent.", "# TYPE signoff_outbox_due gauge", "signoff_outbox_due \(dueMail)"]
                let text = lines.joined(separator: "\n") + "\n"
                if let textfile {
                    let path = ConfigLoader.absolute(textfile, base: FileManager.default.currentDirectoryPath)
                    // Written next to the target and renamed over it, so node_exporter never reads half a file.
                    let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
                    do {
                        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
                        guard rename(temporary, path) == 0 else {
                            let reason = String(cString: strerror(errno))
                            try? FileManager.default.removeItem(atPath: temporary)
                            throw RunnerError("metrics.write", "cannot move \(temporary) to \(path): \(reason); check that the folder is writable")
                        }
                    } catch let error as RunnerError {
                        throw error
                    } catch {
                        throw RunnerError("metrics.write", "cannot write \(path): \(error.localizedDescription); check that the folder exists and is writable")
                    }
                } else {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            }
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
