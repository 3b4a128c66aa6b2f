import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff show RUN`.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A run's timeline: events, requests, answers (who, when, via which message), output, error.")

    @Argument(help: "The run id.")
    var run: String

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    struct Detail: Encodable {
        var run: RunView
        var events: [EventView]
        var requests: [RequestView]
        var output: JobValue?
    }

    func run() async throws {
        try await reporting {
            try await global.withEnvironment { environment in
                let store = environment.store
                let record = try await requireRun(store, run)
                var requests: [RequestView] = []
                for r in try await store.requests(runID: run) { requests.append(RequestView(r, votes: try await store.votes(requestID: r.id))) }
                let events = try await store.events(runID: run).map(EventView.init)
                let detail = Detail(run: RunView(record), events: events, requests: requests,
                                    output: record.output.flatMap { JobValue.parse($0) })
                if output.json { try Console.json(detail); return }
                Console.out("run \(record.id)  job \(record.job)  status \(record.status.rawValue)  attempt \(record.attempt)\(record.rerunOf.map { "  rerun of \($0)" } ?? "")")
                Console.out("requested by \(record.requestedBy ?? "-")  created \(Console.time(record.createdAt))  finished \(Console.time(record.finishedAt))")
                if let error = record.error { Console.out("error: \(error)") }
                Console.out("\nevents:")
                for e in events { Console.out("  \(Console.time(e.at))  \(e.kind)\(e.actor.map { "  by \($0)" } ?? "")  \(Self.readable(e.data))") }
                if !requests.isEmpty {
                    Console.out("\nrequests:")
                    for r in requests {
                        Console.out("  \(r.id)  step \(r.step ?? "-")  \(r.status)\(r.decision.map { ": \($0)" } ?? "")  reviewers \(r.reviewers.joined(separator: ","))")
                        for v in r.votes {
                            Console.out("    \(Console.time(v.at))  \(v.reviewer) \(v.verdict)\(v.reason.map { " (\($0))" } ?? "")  via \(v.channel)\(v.via.map { " \($0)" } ?? "")")
                        }
                    }
                }
                if case .object(let o)? = detail.output, case .object(let steps)? = o["steps"] {
                    Console.out("\noutput:")
                    for (id, result) in steps.sorted(by: { $0.key < $1.key }) {
                        let text = (result["stdout"] ?? result["text"] ?? result["decision"] ?? result["value"] ?? result["output"])?.description ?? ""
                        Console.out("  \(id): \(text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "\n    "))")
                    }
                }
            }
        }
    }

    /// An event's data as `key=value` pairs, epoch-millisecond times (`…_at`) as UTC times.
    static func readable(_ data: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return data }
        return object.keys.sorted().map { key -> String in
            var value = "\(object[key] ?? "")"
            if key.hasSuffix("_at"), let ms = Double(value), ms > 1e11 {
                value = Console.time(Date(timeIntervalSince1970: ms / 1000))
            }
            return "\(key)=\(value)"
        }.joined(separator: " ")
    }
}
