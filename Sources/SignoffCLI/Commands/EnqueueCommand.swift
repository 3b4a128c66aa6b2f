import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff enqueue JOB [--input k=v]… [--input-file F.json] [--unique-key K]`.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Queue a run of a job and print its id.",
        discussion: "Inputs not given keep the job's defaults. With --unique-key, enqueueing the same key again prints the existing run (exit 0).")

    @Argument(help: "The job's name (a file jobs/NAME.yaml).")
    var job: String

    @Option(name: .long, help: ArgumentHelp("An input value, overriding the job's default (repeatable).", valueName: "key=value"))
    var input: [String] = []

    @Option(name: .customLong("input-file"), help: ArgumentHelp("A JSON object of inputs.", valueName: "file.json"))
    var inputFile: String?

    @Option(name: .customLong("unique-key"), help: "Deduplicate: a second enqueue with this key returns the first run.")
    var uniqueKey: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("Who asks for the run (for `forbid: [requester]`); default: `user:` of signoff.yaml or $USER.", valueName: "email"))
    var requester: String?

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        for pair in input where !pair.contains("=") {
            throw ValidationError("--input takes key=value, not `\(pair)`; write e.g. --input version=1.2.3")
        }
    }

    func run() async throws {
        try await reporting {
            let config = try global.loadConfig()
            let definition = try JobCatalog(directory: config.jobs).job(named: job)
            // Refuse now what would fail at run time: unknown executors, a graph the engine rejects.
            _ = try JobCompiler.compile(definition, services: StepServices(registry: SignoffCLI.registry))
            var values: [String: JobValue] = [:]
            if let inputFile {
                let path = ConfigLoader.absolute(inputFile, base: FileManager.default.currentDirectoryPath)
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw RunnerError.notFound("input.not_found", "cannot read --input-file \(path); check the path")
                }
                guard case .object(let o)? = JobValue.parse(data) else {
                    throw RunnerError.usage("input.not_object", "--input-file \(path) must hold a JSON object like {\"version\": \"1.2.3\"}")
                }
                values.merge(o) { _, new in new }
            }
            for pair in input {
                let key = String(pair[..<pair.firstIndex(of: "=")!])
                values[key] = .string(String(pair[pair.index(after: pair.firstIndex(of: "=")!)...]))
            }
            for key in values.keys where definition.input[key] == nil {
                let declared = definition.input.keys.sorted()
                var hint = declared.isEmpty ? "it declares none; add `input: { \(key): \"\" }` to the job" : "its inputs are: \(declared.joined(separator: ", "))"
                if let guess = Spelling.suggestion(for: key, in: declared) { hint = "did you mean `\(guess)`?" }
                throw RunnerError.usage("input.unknown", "job \(job) has no input `\(key)`; \(hint)")
            }
            var merged = definition.input
            merged.merge(values) { _, new in new }
            let environment = try await RunnerEnvironment.open(config: config, registry: SignoffCLI.registry)
            let user = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
            let requestedBy = requester ?? config.user ?? (user.isEmpty ? nil : "\(user)@\(ProcessInfo.processInfo.hostName)")
            let enqueued: (run: RunRecord, created: Bool)
            do {
                enqueued = try await environment.store.enqueue(
                    NewRun(job: definition.name, input: try JSONEncoder().encode(merged), requestedBy: requestedBy,
                           uniqueKey: uniqueKey), now: Date())
                await environment.store.close()
            } catch {
                await environment.store.close()
                throw error
            }
            let (run, created) = enqueued
            if output.json {
                try Console.json(["id": run.id, "created": created ? "true" : "false", "status": run.status.rawValue])
            } else {
                Console.out(run.id)
                if !created { Console.error("a run with unique key \(uniqueKey ?? "") already exists: \(run.id) (\(run.status.rawValue))") }
            }
        }
    }
}
