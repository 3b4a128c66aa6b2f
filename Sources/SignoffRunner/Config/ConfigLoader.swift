import Foundation
import Yams

/// Finds and reads `signoff.yaml`.
///
/// Search order: `--config`, then `$SIGNOFF_CONFIG`, then `./signoff.yaml`, then
/// `/etc/signoff/signoff.yaml`. `--database` and then `$SIGNOFF_DATABASE` override `database:`.
public enum ConfigLoader {
    /// Every key `signoff.yaml` accepts at the top level.
    public static let topLevelKeys = ["database", "jobs", "templates", "maildrop", "inbox", "archive",
                                      "quarantine", "mail", "llm", "user"]
    /// Every key of `mail:`.
    public static let mailKeys = ["from", "reply_to", "transport", "username", "password_file", "authserv_id"]

    /// The system-wide location.
    public static let systemPath = "/etc/signoff/signoff.yaml"

    /// Where the configuration would be read from, or nil if there is none.
    public static func locate(explicit: String?, environment: [String: String],
                              currentDirectory: String) -> String? {
        if let explicit, !explicit.isEmpty { return absolute(explicit, base: currentDirectory) }
        if let env = environment["SIGNOFF_CONFIG"], !env.isEmpty { return absolute(env, base: currentDirectory) }
        let local = (currentDirectory as NSString).appendingPathComponent("signoff.yaml")
        if FileManager.default.fileExists(atPath: local) { return local }
        if FileManager.default.fileExists(atPath: systemPath) { return systemPath }
        return nil
    }

    /// Loads the configuration for a command.
    ///
    /// - Parameters:
    ///   - explicit: the `--config` option.
    ///   - databaseOverride: the `--database` option.
    public static func load(explicit: String? = nil, databaseOverride: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            currentDirectory: String = FileManager.default.currentDirectoryPath) throws -> SignoffConfig {
        guard let path = locate(explicit: explicit, environment: environment, currentDirectory: currentDirectory) else {
            throw RunnerError.notFound("config.not_found",
                "no signoff.yaml found (looked at $SIGNOFF_CONFIG, ./signoff.yaml and \(systemPath)); run `signoff init` to create one, or pass --config PATH")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw RunnerError.notFound("config.not_found",
                "the configuration file \(path) does not exist; check --config / $SIGNOFF_CONFIG, or run `signoff init` to create one")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RunnerError("config.unreadable", "cannot read \(path): \(error.localizedDescription); check its permissions")
        }
        var config = try parse(text: text, file: path)
        if let db = databaseOverride ?? environment["SIGNOFF_DATABASE"], !db.isEmpty {
            config.database = resolveDatabase(db, base: currentDirectory)
        }
        return config
    }

    /// Parses the text of a configuration file located at `file` (relative paths resolve against its folder).
    public static func parse(text: String, file: String) throws -> SignoffConfig {
        let reader = YAMLReader(file: file, text: text)
        let base = (file as NSString).deletingLastPathComponent
        guard let root = reader.root(),
              let top = reader.mapping(root, context: "signoff.yaml", allowed: topLevelKeys) else {
            throw DiagnosticsError(reader.diagnostics).runnerError
        }
        func path(_ key: String, default value: String) -> String {
            guard let node = top[key]?.value else { return absolute(value, base: base) }
            guard let s = reader.nonEmptyString(node, "`\(key)`") else { return absolute(value, base: base) }
            return absolute(s, base: base)
        }
        var database = "sqlite:var/signoff.sqlite"
        if let node = top["database"]?.value, let s = reader.nonEmptyString(node, "`database`") {
            if !(s.hasPrefix("sqlite:") || s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") || s.contains("=")) {
                reader.report(node, "`database` must be sqlite:PATH, a postgres:// URL or a libpq keyword string, not `\(SignoffConfig.redact(s))`",
                              hint: "write e.g. `sqlite:var/signoff.sqlite` or `postgres://signoff@db.example.org/signoff`")
            }
            database = s
        }
        var mail = SignoffConfig.Mail(from: "Signoff <signoff@localhost>", replyTo: "approvals@localhost",
                                      transport: "outbox:" + absolute("var/outbox", base: base))
        if let node = top["mail"]?.value, let m = reader.mapping(node, context: "mail", allowed: mailKeys) {
            if let n = m["from"]?.value, let s = reader.nonEmptyString(n, "`mail.from`") { mail.from = s }
            if let n = m["reply_to"]?.value, let s = reader.nonEmptyString(n, "`mail.reply_to`") {
                if !s.contains("@") {
                    reader.report(n, "`mail.reply_to` must be an address like approvals@example.org, not `\(s)`",
                                  hint: "write the address replies should go to; tokens become its sub-address")
                }
                mail.replyTo = s
            }
            if let n = m["transport"]?.value, let s = reader.nonEmptyString(n, "`mail.transport`") {
                if s.hasPrefix("outbox:") {
                    mail.transport = "outbox:" + absolute(String(s.dropFirst("outbox:".count)), base: base)
                } else if s.hasPrefix("smtp://") || s.hasPrefix("smtps://") {
                    mail.transport = s
                } else {
                    reader.report(n, "`mail.transport` must be outbox:PATH, smtp://host:587 or smtps://host:465, not `\(s)`",
                                  hint: "write `outbox:var/outbox` to write .eml files, or your SMTP server's URL")
                }
            }
            if let n = m["username"]?.value { mail.username = reader.nonEmptyString(n, "`mail.username`") }
            if let n = m["password_file"]?.value, let s = reader.nonEmptyString(n, "`mail.password_file`") {
                mail.passwordFile = absolute(s, base: base)
            }
            if let n = m["authserv_id"]?.value { mail.authservID = reader.nonEmptyString(n, "`mail.authserv_id`") }
        }
        var user: String?
        if let n = top["user"]?.value { user = reader.nonEmptyString(n, "`user`") }
        var llm: JobValue?
        if let n = top["llm"]?.value {
            if n.mapping == nil {
                reader.report(n, "`llm` must be a mapping", hint: "write e.g. `llm: { base_url: \"http://127.0.0.1:11434/v1\", model: llama3 }`")
            } else {
                llm = reader.json(n, "`llm`")
            }
        }
        if !reader.diagnostics.isEmpty { throw DiagnosticsError(reader.diagnostics).runnerError }
        return SignoffConfig(file: file, baseDirectory: base,
                             database: resolveDatabase(database, base: base),
                             jobs: path("jobs", default: "jobs"),
                             templates: path("templates", default: "templates"),
                             maildrop: path("maildrop", default: "var/maildrop"),
                             inbox: path("inbox", default: "var/inbox"),
                             archive: path("archive", default: "var/archive"),
                             quarantine: path("quarantine", default: "var/quarantine"),
                             mail: mail, user: user, llm: llm)
    }

    /// `sqlite:relative/path` made absolute against `base`; other URLs unchanged.
    public static func resolveDatabase(_ url: String, base: String) -> String {
        guard url.hasPrefix("sqlite:") else { return url }
        let path = String(url.dropFirst("sqlite:".count))
        if path == ":memory:" { return url }
        return "sqlite:" + absolute(path, base: base)
    }

    /// `path` made absolute against `base` (`~` expanded).
    public static func absolute(_ path: String, base: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
        return ((base as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
    }
}
