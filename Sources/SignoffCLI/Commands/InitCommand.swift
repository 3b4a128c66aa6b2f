import ArgumentParser
import Foundation
import SignoffRunner

/// `signoff init [DIR]`: configuration, folders, an example approval job and the embedded database.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create signoff.yaml, the folders, an example approval job and the embedded database.",
        discussion: """
            Writes DIR/signoff.yaml (SQLite database, mail written as .eml files to var/outbox), var/maildrop/{new,cur,tmp}, var/inbox/{new,tmp}, var/archive, var/quarantine, var/outbox, templates/, jobs/release-notes.yaml with its scripts, and creates the database. Refuses (exit 4) when DIR/signoff.yaml exists, unless --force.
            """)

    @Argument(help: "The folder to set up (default: the current folder).")
    var directory: String = "."

    @Flag(help: "Overwrite an existing signoff.yaml and example job.")
    var force = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reporting {
            let fm = FileManager.default
            let dir = ConfigLoader.absolute(directory, base: fm.currentDirectoryPath)
            let configPath = dir + "/signoff.yaml"
            if fm.fileExists(atPath: configPath), !force {
                throw RunnerError.conflict("init.exists", "\(configPath) already exists; use it as it is, or pass --force to overwrite it and the example job")
            }
            for folder in ["var/maildrop/new", "var/maildrop/cur", "var/maildrop/tmp", "var/inbox/new", "var/inbox/tmp",
                           "var/archive", "var/quarantine", "var/outbox", "templates", "jobs/scripts"] {
                try fm.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true)
            }
            try write(Self.configText, to: configPath)
            try write(Self.jobText, to: dir + "/jobs/release-notes.yaml")
            try write(Self.draftScript, to: dir + "/jobs/scripts/draft.sh", executable: true)
            try write(Self.publishScript, to: dir + "/jobs/scripts/publish.sh", executable: true)
            var config = try ConfigLoader.load(explicit: configPath, databaseOverride: global.database)
            if global.database == nil, ProcessInfo.processInfo.environment["SIGNOFF_DATABASE"] == nil {
                config.database = "sqlite:" + dir + "/var/signoff.sqlite"
            }
            let environment = try await RunnerEnvironment.open(config: config, registry: SignoffCLI.registry)
            await environment.store.close()
            Console.out("""
                Created \(configPath) and the folders under \(dir)/var.
                Database: \(config.redactedDatabase)
                Example job: \(dir)/jobs/release-notes.yaml

                Next:
                  cd \(dir)
                  signoff enqueue release-notes --input version=1.2.3
                  signoff run                 # runs until the approval waits; the request mail is in var/outbox/
                  signoff pending
                """)
        }
    }

    func write(_ text: String, to path: String, executable: Bool = false) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
    }

    static let configText = """
        # Signoff configuration. Relative paths are relative to this file.
        database: sqlite:var/signoff.sqlite        # or postgres://user@host/db, or a libpq keyword string
        jobs: jobs
        templates: templates                       # overrides of the built-in mail templates
        maildrop: var/maildrop                     # a Maildir (new/ cur/ tmp/) where replies are delivered
        inbox: var/inbox                           # response files (new/ tmp/)
        archive: var/archive
        quarantine: var/quarantine
        mail:
          from: "Signoff <signoff@example.org>"
          reply_to: approvals@example.org          # tokens become approvals+TOKEN@example.org
          transport: outbox:var/outbox             # or smtp://host:587 (STARTTLS), smtps://host:465
          # username: signoff
          # password_file: ${CREDENTIALS_DIRECTORY}/smtp
          # authserv_id: mx.example.org            # strict mode: require dmarc=pass from this MTA
        # llm: { base_url: "http://127.0.0.1:11434/v1", model: llama3 }

        """

    static let jobText = """
        # Draft release notes, have the editor approve them, publish.
        name: release-notes
        description: Draft release notes, have the editor approve them, publish.
        owner: ops@example.org            # gets failure and bounce notices
        schedule: "Mon *-*-* 06:00:00"    # systemd OnCalendar syntax
        input: { version: "1.2.3" }       # defaults; `--input key=value` overrides
        retry: { attempts: 3, backoff: 30s }
        steps:
          - id: draft
            shell: ["./scripts/draft.sh", "{{input.version}}"]
            timeout: 10m
          - id: review
            approval:
              reviewers: [editor@example.org]
              subject: "Release notes {{input.version}}"
              show: "{{steps.draft.stdout}}"
              on_reject: draft          # the step runs again with {{feedback}} set
              max_rounds: 3
              expires_after: 72h
          - id: publish
            shell: ["./scripts/publish.sh"]

        """

    static let draftScript = """
        #!/bin/sh
        # Drafts release notes for version $1. On a second round, the reviewer's feedback arrives in
        # $SIGNOFF_FEEDBACK and is worked into the draft.
        set -eu
        version="${1:?usage: draft.sh VERSION}"
        echo "Release notes for version $version"
        echo
        echo "- Faster imports of large mailboxes"
        echo "- Clearer error messages in job files"
        if [ -n "${SIGNOFF_FEEDBACK:-}" ]; then
            echo
            echo "Revised after review: $SIGNOFF_FEEDBACK"
        fi

        """

    static let publishScript = """
        #!/bin/sh
        # Publishes the approved notes. A real job would upload them; this one says what it would do.
        # Inputs arrive as environment variables: SIGNOFF_INPUT_VERSION, and SIGNOFF_RUN_ID for the run.
        set -eu
        echo "published release notes ${SIGNOFF_INPUT_VERSION:-?} (run ${SIGNOFF_RUN_ID:-?})"

        """
}
