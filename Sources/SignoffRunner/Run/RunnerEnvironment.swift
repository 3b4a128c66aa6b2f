import Foundation
import Logging
import SignoffEngine
import SignoffLLM
import SignoffMail
import SignoffStore

/// Everything a runner process needs: configuration, the store, jobs, step services, mail.
public struct RunnerEnvironment: Sendable {
    public var config: SignoffConfig
    public var store: any RunStore
    public var services: StepServices
    public var templates: MailTemplates
    public var logger: Logger
    /// The current time (injected so tests can move it).
    public var now: @Sendable () -> Date
    /// This process's name in leases: `host:pid`.
    public var owner: String
    /// How long a claim lasts without a heartbeat.
    public var leaseSeconds: Double

    public init(config: SignoffConfig, store: any RunStore, services: StepServices, templates: MailTemplates,
                logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
                owner: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)",
                leaseSeconds: Double = 300) {
        self.config = config
        self.store = store
        self.services = services
        self.templates = templates
        self.logger = logger
        self.now = now
        self.owner = owner
        self.leaseSeconds = leaseSeconds
    }

    /// Opens the store and builds the services from a configuration.
    public static func open(config: SignoffConfig, registry: ExecutorRegistry = ExecutorRegistry(),
                            logger: Logger = Logger(label: "signoff")) async throws -> RunnerEnvironment {
        let store: any RunStore
        do {
            store = try await openStore(url: config.database, logger: logger)
        } catch let error as StoreError {
            // A failed connection and a full disk say already what to do; other failures (a
            // migration, say) get the pointer here.
            let server = config.database.hasPrefix("sqlite:") ? "that its folder is writable" : "that the server is running"
            let fix = [.connectionFailed, .diskFull].contains(error.code) ? ""
                : "; check `database:` in signoff.yaml (or --database / $SIGNOFF_DATABASE) and \(server)"
            throw RunnerError("database.open", "cannot open the database \(config.redactedDatabase): \(error.message)\(fix)")
        }
        let templates: MailTemplates
        do {
            templates = try MailTemplates(directory: FileManager.default.fileExists(atPath: config.templates) ? config.templates : nil)
        } catch {
            throw RunnerError.usage("templates.invalid", "the templates in \(config.templates) do not load: \(error); fix them (see `signoff jobs check`)")
        }
        var services = StepServices(registry: registry)
        services.chatClient = try makeChatClient(config)
        return RunnerEnvironment(config: config, store: store, services: services, templates: templates, logger: logger)
    }

    /// The chat client of `llm:`, or nil when the section is absent.
    static func makeChatClient(_ config: SignoffConfig) throws -> (any ChatClient)? {
        guard let json = config.llmJSON else { return nil }
        do {
            var configuration = try JSONDecoder().decode(LLMConfiguration.self, from: Data(expandCredentials(json).utf8))
            if let file = configuration.apiKeyFile { configuration.apiKeyFile = ConfigLoader.absolute(file, base: config.baseDirectory) }
            return try OpenAIChatClient(configuration: configuration)
        } catch {
            throw RunnerError.usage("llm.config", "the `llm:` section of \(config.file ?? "signoff.yaml") is not usable: \(error); see docs/cli.md for its keys")
        }
    }

    /// `${CREDENTIALS_DIRECTORY}` in file settings becomes systemd's credentials folder.
    static func expandCredentials(_ text: String) -> String {
        guard let dir = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"] else { return text }
        return text.replacingOccurrences(of: "${CREDENTIALS_DIRECTORY}", with: dir)
            .replacingOccurrences(of: "$CREDENTIALS_DIRECTORY", with: dir)
    }

    /// The job folder's catalog.
    public var catalog: JobCatalog { JobCatalog(directory: config.jobs) }

    /// The composer of request and notice mail.
    public func composer() throws -> MailComposer {
        guard let from = EmailAddress.parseList(config.mail.from).first else {
            throw RunnerError.usage("mail.from", "`mail.from` (\(config.mail.from)) is not an address; write e.g. \"Signoff <signoff@example.org>\"")
        }
        guard let reply = EmailAddress.parseList(config.mail.replyTo).first else {
            throw RunnerError.usage("mail.reply_to", "`mail.reply_to` (\(config.mail.replyTo)) is not an address; write e.g. approvals@example.org")
        }
        return MailComposer(templates: templates, from: from, replyAddress: reply)
    }

    /// The transport `mail.transport` names.
    public func transport() throws -> any MailTransport {
        if let folder = config.mail.outboxFolder { return OutboxFolderTransport(folder: folder) }
        let passwordFile = config.mail.passwordFile.map(Self.expandCredentials)
        do {
            return try SMTPTransport(configuration: SMTPConfiguration(url: config.mail.transport, username: config.mail.username,
                                                                      passwordFile: passwordFile))
        } catch {
            throw RunnerError.usage("mail.transport", "`mail.transport` cannot be used: \(error)")
        }
    }
}
