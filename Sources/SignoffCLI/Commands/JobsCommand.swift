import ArgumentParser
import Foundation
import SignoffMail
import SignoffRunner

/// `signoff jobs list | check [FILE…]`.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List jobs, or check job files and templates.",
        subcommands: [List.self, Check.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the jobs in the jobs folder.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        struct Row: Encodable {
            var name: String
            var description: String?
            var schedule: String?
            var steps: [String]
            var file: String
        }

        func run() async throws {
            try await reporting {
                let config = try global.loadConfig()
                let (jobs, problems) = JobCatalog(directory: config.jobs).loadAll()
                let rows = jobs.map { Row(name: $0.name, description: $0.description, schedule: $0.schedule,
                                          steps: $0.steps.map(\.id), file: $0.file) }
                if output.json {
                    try Console.json(rows)
                } else {
                    Console.table(["NAME", "SCHEDULE", "STEPS", "DESCRIPTION"],
                                  rows.map { [$0.name, $0.schedule ?? "-", $0.steps.joined(separator: ","), $0.description ?? ""] })
                }
                if !problems.isEmpty {
                    Console.error("\(Set(problems.map(\.file)).count) job file(s) have problems; run `signoff jobs check`")
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate job files: schema, {{…}} paths, schedules, executors and templates.",
            discussion: "Without FILE, checks every job in the jobs folder and the templates folder. Exit 2 when anything is wrong.")
        @Argument(help: "Job files to check (default: all of the jobs folder).")
        var files: [String] = []
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await reporting {
                let config = try? global.loadConfig()
                var paths = files.map { ConfigLoader.absolute($0, base: FileManager.default.currentDirectoryPath) }
                if paths.isEmpty {
                    guard let config else {
                        throw RunnerError.notFound("config.not_found", "no signoff.yaml found, so no jobs folder; name the files to check, or run `signoff init`")
                    }
                    paths = JobCatalog(directory: config.jobs).files()
                }
                var problems: [Diagnostic] = []
                var templateNames: Set<String> = []
                let registry = SignoffCLI.registry
                for path in paths {
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw RunnerError.notFound("job.not_found", "no file \(path); check the path")
                    }
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    let (job, found) = JobParser.check(text: text, file: path)
                    problems += found
                    guard let job else { continue }
                    if found.isEmpty, job.steps.allSatisfy({ step in
                        if case .executor(let e) = step.kind { return registry.executors[e.name] != nil }
                        return true
                    }) {
                        do {
                            _ = try JobCompiler.compile(job, services: StepServices(registry: registry))
                        } catch let error as RunnerError {
                            problems.append(Diagnostic(file: path, line: 0, column: 0, message: error.message))
                        }
                    }
                    if let t = job.template { templateNames.insert(t) }
                    for step in job.steps {
                        switch step.kind {
                        case .approval(let a): if let t = a.policy.template { templateNames.insert(t) }
                        case .ask(let a): if let t = a.policy.template { templateNames.insert(t) }
                        case .executor(let e) where registry.executors[e.name] == nil:
                            var hint = registry.names.isEmpty ? "this program registers no executors" : "registered: \(registry.names.joined(separator: ", "))"
                            if let guess = Spelling.suggestion(for: e.name, in: registry.names) { hint = "did you mean `\(guess)`?" }
                            problems.append(Diagnostic(file: path, line: 0, column: 0,
                                                       message: "step `\(step.id)` uses executor `\(e.name)`, which this program does not register",
                                                       hint: hint))
                        default: break
                        }
                    }
                }
                let templateDir = config.flatMap { FileManager.default.fileExists(atPath: $0.templates) ? $0.templates : nil }
                for error in MailTemplates.validate(directory: templateDir, names: templateNames.sorted()) {
                    problems.append(Diagnostic(file: error.file ?? (templateDir ?? "templates"), line: error.line ?? 0, column: 0,
                                               message: error.message))
                }
                if output.json {
                    try Console.json(["files": paths.count == 0 ? [] : paths, "problems": problems.map(\.description)])
                } else if problems.isEmpty {
                    Console.out("\(paths.count) job file(s) OK")
                }
                if !problems.isEmpty {
                    for p in problems where !output.json { FileHandle.standardError.write(Data((p.description + "\n").utf8)) }
                    throw ExitCode(ExitStatus.usage.rawValue)
                }
            }
        }
    }
}
