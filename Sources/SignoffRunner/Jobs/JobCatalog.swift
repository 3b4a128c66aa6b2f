import Foundation

/// The job files of a `jobs/` folder.
public struct JobCatalog: Sendable {
    /// The folder.
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// The `.yaml` / `.yml` files, sorted.
    public func files() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Every job that parses, and the problems of the ones that do not.
    public func loadAll() -> (jobs: [JobDefinition], problems: [Diagnostic]) {
        var jobs: [JobDefinition] = []
        var problems: [Diagnostic] = []
        for file in files() {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                problems.append(Diagnostic(file: file, line: 0, column: 0, message: "cannot read the file", hint: "check its permissions"))
                continue
            }
            let (job, found) = JobParser.check(text: text, file: file)
            if let job, found.isEmpty { jobs.append(job) }
            problems += found
        }
        return (jobs, problems)
    }

    /// The job called `name`; a clear not-found error (with a suggestion) otherwise.
    public func job(named name: String) throws -> JobDefinition {
        for ext in ["yaml", "yml"] {
            let file = (directory as NSString).appendingPathComponent("\(name).\(ext)")
            if FileManager.default.fileExists(atPath: file) {
                do {
                    return try JobParser.parse(file: file)
                } catch let error as DiagnosticsError {
                    throw RunnerError.usage("job.invalid", "job \(name) has problems; fix them (see `signoff jobs check`):\n\(error.description)")
                }
            }
        }
        let known = files().map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }
        var hint = known.isEmpty ? "there are no job files in \(directory); create \(name).yaml there" : "jobs are: \(known.joined(separator: ", "))"
        if let guess = Spelling.suggestion(for: name, in: known) { hint = "did you mean `\(guess)`?" }
        throw RunnerError.notFound("job.not_found", "no job named `\(name)` in \(directory); \(hint)")
    }
}
