import Foundation

/// The contents of `signoff.yaml`, with every relative path resolved against the file's folder.
public struct SignoffConfig: Sendable {
    /// The mail settings (`mail:`).
    public struct Mail: Sendable, Hashable {
        /// The sender, e.g. `Signoff <signoff@example.org>`.
        public var from: String
        /// The address replies go to; tokens become its sub-address (`approvals+TOKEN@…`).
        public var replyTo: String
        /// `outbox:PATH` (files), `smtp://host:587` (STARTTLS), or `smtps://host:465`.
        public var transport: String
        /// SMTP user name, if the server wants one.
        public var username: String?
        /// A file holding the SMTP password (e.g. a systemd credential); never the password itself.
        public var passwordFile: String?
        /// Our MTA's authserv-id; when set, replies need `dmarc=pass` from it (strict mode).
        public var authservID: String?

        public init(from: String, replyTo: String, transport: String, username: String? = nil,
                    passwordFile: String? = nil, authservID: String? = nil) {
            self.from = from
            self.replyTo = replyTo
            self.transport = transport
            self.username = username
            self.passwordFile = passwordFile
            self.authservID = authservID
        }

        /// The folder of an `outbox:PATH` transport, nil for SMTP.
        public var outboxFolder: String? {
            transport.hasPrefix("outbox:") ? String(transport.dropFirst("outbox:".count)) : nil
        }
    }

    /// The file this came from (nil for a configuration built in code).
    public var file: String?
    /// The folder relative paths were resolved against.
    public var baseDirectory: String
    /// `sqlite:PATH`, a `postgres://` URL or a libpq keyword string.
    public var database: String
    /// The folder of job files.
    public var jobs: String
    /// The folder of template overrides.
    public var templates: String
    /// The Maildir replies are delivered to (`new/ cur/ tmp/`).
    public var maildrop: String
    /// The folder of response files (`new/ tmp/`).
    public var inbox: String
    /// Where imported messages are moved.
    public var archive: String
    /// Where rejected messages are moved, with a reason file.
    public var quarantine: String
    /// Mail settings.
    public var mail: Mail
    /// The address that enqueues runs when `--as` is not given (for `forbid: [requester]`).
    public var user: String?
    /// The `llm:` mapping, untouched, as JSON text; SignoffLLM's configuration decodes it.
    public var llmJSON: String?
    /// The `llm:` mapping as a value.
    public var llm: JobValue?

    public init(file: String?, baseDirectory: String, database: String, jobs: String, templates: String,
                maildrop: String, inbox: String, archive: String, quarantine: String, mail: Mail,
                user: String? = nil, llm: JobValue? = nil) {
        self.file = file
        self.baseDirectory = baseDirectory
        self.database = database
        self.jobs = jobs
        self.templates = templates
        self.maildrop = maildrop
        self.inbox = inbox
        self.archive = archive
        self.quarantine = quarantine
        self.mail = mail
        self.user = user
        self.llm = llm
        self.llmJSON = llm?.jsonText
    }

    /// The database URL as shown to users: a PostgreSQL password is replaced by `***`.
    public var redactedDatabase: String { Self.redact(database) }

    /// Replaces the password of a `postgres://user:password@host` URL or a `password=` keyword.
    public static func redact(_ url: String) -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"),
           let schemeEnd = url.range(of: "://"),
           let at = url[schemeEnd.upperBound...].firstIndex(of: "@") {
            let userinfo = url[schemeEnd.upperBound..<at]
            if let colon = userinfo.firstIndex(of: ":") {
                return String(url[..<colon]) + ":***" + String(url[at...])
            }
            return url
        }
        if url.contains("password=") {
            return url.split(separator: " ").map { $0.hasPrefix("password=") ? "password=***" : String($0) }
                .joined(separator: " ")
        }
        return url
    }
}
