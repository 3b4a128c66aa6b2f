import Foundation
import Testing
@testable import SignoffRunner

struct ConfigLoaderTests {
    static let full = """
    database: sqlite:var/signoff.sqlite
    jobs: jobs
    templates: templates
    maildrop: var/maildrop
    inbox: var/inbox
    archive: var/archive
    quarantine: var/quarantine
    mail:
      from: "Signoff <signoff@example.org>"
      reply_to: approvals@example.org
      transport: outbox:var/outbox
      username: signoff
      password_file: /run/credentials/signoff-run.service/smtp
      authserv_id: mx.example.org
    llm: { base_url: "http://127.0.0.1:11434/v1", model: llama3, api_key_file: secrets/llm }
    """

    @Test func relativePathsResolveAgainstTheFile() throws {
        let c = try ConfigLoader.parse(text: Self.full, file: "/srv/signoff/signoff.yaml")
        #expect(c.database == "sqlite:/srv/signoff/var/signoff.sqlite")
        #expect(c.jobs == "/srv/signoff/jobs")
        #expect(c.maildrop == "/srv/signoff/var/maildrop")
        #expect(c.mail.transport == "outbox:/srv/signoff/var/outbox")
        #expect(c.mail.outboxFolder == "/srv/signoff/var/outbox")
        #expect(c.mail.passwordFile == "/run/credentials/signoff-run.service/smtp")
        #expect(c.mail.authservID == "mx.example.org")
        #expect(c.llm?["model"] == .string("llama3"))
    }

    @Test func searchOrderIsFlagThenEnvironmentThenWorkingDirectory() throws {
        let dir = try TestSupport.scratch()
        try "jobs: a\n".write(toFile: dir + "/signoff.yaml", atomically: true, encoding: .utf8)
        #expect(ConfigLoader.locate(explicit: "/x/flag.yaml", environment: ["SIGNOFF_CONFIG": "/x/env.yaml"], currentDirectory: dir) == "/x/flag.yaml")
        #expect(ConfigLoader.locate(explicit: nil, environment: ["SIGNOFF_CONFIG": "/x/env.yaml"], currentDirectory: dir) == "/x/env.yaml")
        #expect(ConfigLoader.locate(explicit: nil, environment: [:], currentDirectory: dir) == dir + "/signoff.yaml")
    }

    @Test func databaseOverrideWinsOverTheFile() throws {
        let dir = try TestSupport.scratch()
        try Self.full.write(toFile: dir + "/signoff.yaml", atomically: true, encoding: .utf8)
        let env = ["SIGNOFF_DATABASE": "postgres://u@h/db"]
        let fromEnv = try ConfigLoader.load(environment: env, currentDirectory: dir)
        #expect(fromEnv.database == "postgres://u@h/db")
        let fromFlag = try ConfigLoader.load(databaseOverride: "sqlite:other.sqlite", environment: env, currentDirectory: dir)
        #expect(fromFlag.database == "sqlite:\(dir)/other.sqlite")
    }

    @Test func missingConfigurationSaysToRunInit() throws {
        let dir = try TestSupport.scratch()
        #expect {
            _ = try ConfigLoader.load(environment: [:], currentDirectory: dir)
        } throws: { error in
            guard let e = error as? RunnerError else { return false }
            return e.kind == .notFound && e.message.contains("signoff init")
        }
    }

    @Test func unknownKeyIsNamedWithItsPosition() {
        #expect {
            _ = try ConfigLoader.parse(text: "databse: sqlite:x\n", file: "/etc/signoff/signoff.yaml")
        } throws: { error in
            "\(error)".contains("/etc/signoff/signoff.yaml:1:1: unknown key `databse`") && "\(error)".contains("did you mean `database`?")
        }
    }

    @Test func postgresPasswordIsRedacted() {
        #expect(SignoffConfig.redact("postgres://u:secret@h/db") == "postgres://u:***@h/db")
        #expect(SignoffConfig.redact("host=h password=secret dbname=x") == "host=h password=*** dbname=x")
    }
}
