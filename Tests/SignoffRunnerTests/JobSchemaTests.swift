import Foundation
import Testing
@testable import SignoffRunner

/// `schema/job.schema.json` is what editors complete job files from: it must accept the shipped jobs,
/// refuse what the parser refuses, and list exactly the keys the Swift model reads.
struct JobSchemaTests {
    static var schemaPath: String { TestSupport.packageRoot + "/schema/job.schema.json" }
    static var jobFiles: [String] {
        let dir = TestSupport.packageRoot + "/jobs"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { dir + "/" + $0 }
    }

    /// Runs Python's jsonschema on `files`; returns the problems it prints.
    static func validate(_ files: [String]) throws -> (Int32, String) {
        let python = try #require(TestSupport.which("python3"), "python3 with the jsonschema and yaml modules is needed")
        let script = """
        import json, sys, yaml, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        v = jsonschema.Draft202012Validator(schema)
        bad = 0
        for f in sys.argv[2:]:
            for e in v.iter_errors(yaml.safe_load(open(f))):
                bad += 1
                print(f"{f}: {'/'.join(str(p) for p in e.absolute_path)}: {e.message}")
        sys.exit(1 if bad else 0)
        """
        let r = try TestSupport.run(python, ["-c", script, schemaPath] + files)
        if r.stderr.contains("ModuleNotFoundError") {
            Issue.record("python3 lacks jsonschema or yaml: \(r.stderr)")
        }
        return (r.status, r.stdout + r.stderr)
    }

    @Test func everyShippedJobValidatesAgainstTheSchema() throws {
        #expect(!Self.jobFiles.isEmpty, "jobs/ has no job files")
        let (status, output) = try Self.validate(Self.jobFiles)
        #expect(status == 0, "schema problems:\n\(output)")
    }

    @Test func everyShippedJobParses() throws {
        for file in Self.jobFiles {
            let (_, problems) = JobParser.check(text: try String(contentsOfFile: file, encoding: .utf8), file: file)
            #expect(problems.isEmpty, "\(file): \(problems)")
        }
    }

    @Test func schemaRefusesAnUnknownKeyLikeTheParser() throws {
        let dir = try TestSupport.scratch()
        let file = dir + "/t.yaml"
        try "name: t\nsteps:\n  - id: a\n    shel: [echo]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (status, _) = try Self.validate([file])
        #expect(status != 0)
        #expect(!JobParser.check(text: try String(contentsOfFile: file, encoding: .utf8), file: file).1.isEmpty)
    }

    @Test(arguments: JobKeys.byDefinition.keys.sorted())
    func schemaListsExactlyTheModelsKeys(_ definition: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.schemaPath))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let defs = try #require(schema["$defs"] as? [String: Any])
        let def = try #require(defs[definition] as? [String: Any], "schema has no $defs/\(definition)")
        let properties = try #require(def["properties"] as? [String: Any])
        #expect(Set(properties.keys) == Set(JobKeys.byDefinition[definition]!),
                "$defs/\(definition): schema has \(properties.keys.sorted()), the model reads \(JobKeys.byDefinition[definition]!.sorted())")
        #expect(def["additionalProperties"] as? Bool == false, "$defs/\(definition) must refuse unknown keys")
    }
}
