import ArgumentParser
import Foundation
import Logging
import SignoffRunner
import SignoffStore

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("signoff.yaml to use (default: $SIGNOFF_CONFIG, ./signoff.yaml, /etc/signoff/signoff.yaml).", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Database URL overriding the configuration (also $SIGNOFF_DATABASE): sqlite:PATH or postgres://…", valueName: "url"))
    var database: String?

    @Flag(name: [.short, .long], help: "Log debug detail to stderr.")
    var verbose = false

    /// The configuration these options point at.
    func loadConfig() throws -> SignoffConfig {
        try ConfigLoader.load(explicit: config, databaseOverride: database)
    }

    /// Runs `body` with an open environment and closes its store afterwards, also on error.
    func withEnvironment<T>(_ body: (RunnerEnvironment) async throws -> T) async throws -> T {
        let environment = try await self.environment()
        do {
            let value = try await body(environment)
            await environment.store.close()
            return value
        } catch {
            await environment.store.close()
            throw error
        }
    }

    /// The configuration, the store and the services.
    func environment() async throws -> RunnerEnvironment {
        let config = try loadConfig()
        return try await RunnerEnvironment.open(config: config, registry: SignoffCLI.registry,
                                                logger: Logger(label: "signoff"))
    }
}

/// `--json` for listings.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false
}

/// Parses `--since` values: an ISO 8601 date or time, or a duration ago (`24h`, `7d`).
func parseSince(_ text: String, now: Date = Date()) -> Date? {
    if let seconds = DurationText.seconds(text) { return now.addingTimeInterval(-seconds) }
    let iso = ISO8601DateFormatter()
    if let d = iso.date(from: text) { return d }
    iso.formatOptions = [.withFullDate]
    return iso.date(from: text)
}
