import ArgumentParser
import Foundation
import SignoffRunner

/// `signoff systemd [--install DIR]`.
struct SystemdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "systemd", abstract: "Print or install the systemd units, and one enqueue timer per scheduled job.",
        discussion: """
            Without --install, prints every unit. With --install DIR, writes them there (e.g. /etc/systemd/system), then: systemctl daemon-reload && systemctl enable --now signoff-run.timer signoff-import.path signoff-import.timer signoff-enqueue@JOB.timer.
            """)

    @Option(help: ArgumentHelp("Write the units into this folder.", valueName: "dir"))
    var install: String?

    @Option(help: ArgumentHelp("The signoff binary the units run (default: this one).", valueName: "path"))
    var binary: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("The services' working and only writable folder.", valueName: "dir"))
    var stateDirectory: String = "/var/lib/signoff"

    @Option(help: "The user and group the services run as.")
    var user: String = "signoff"

    @Flag(name: .customLong("base-only"), help: "Only the fixed units, without reading jobs (no configuration needed).")
    var baseOnly = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reporting {
            var layout = SystemdUnits.Layout(binary: binary ?? Self.currentBinary(), stateDirectory: stateDirectory, user: user)
            var jobs: [JobDefinition] = []
            if !baseOnly {
                let config = try global.loadConfig()
                layout.config = config.file ?? layout.config
                layout.maildrop = config.maildrop
                layout.inbox = config.inbox
                for path in [config.maildrop, config.inbox, config.archive, config.quarantine, config.mail.outboxFolder].compactMap({ $0 })
                where !path.hasPrefix(stateDirectory + "/") && path != stateDirectory {
                    layout.extraWritablePaths.append(path)
                }
                if config.database.hasPrefix("sqlite:") {
                    let folder = (String(config.database.dropFirst(7)) as NSString).deletingLastPathComponent
                    if !folder.hasPrefix(stateDirectory + "/"), folder != stateDirectory { layout.extraWritablePaths.append(folder) }
                }
                let (loaded, problems) = JobCatalog(directory: config.jobs).loadAll()
                if !problems.isEmpty { Console.error("some job files have problems and get no timer; run `signoff jobs check`") }
                jobs = loaded
            }
            var seen = Set<String>()
            layout.extraWritablePaths = layout.extraWritablePaths.filter { seen.insert($0).inserted }
            let generator = SystemdUnits(layout: layout)
            let units = generator.baseUnits() + generator.jobTimers(jobs)
            if let install {
                let dir = ConfigLoader.absolute(install, base: FileManager.default.currentDirectoryPath)
                do {
                    for path in try SystemdUnits.write(units, to: dir) { Console.out(path) }
                } catch {
                    throw RunnerError("systemd.write", "cannot write units into \(dir): \(error.localizedDescription); check the folder's permissions (run as root for /etc/systemd/system)")
                }
            } else {
                for unit in units { Console.out("# ---- \(unit.name) ----\n\(unit.text)") }
            }
        }
    }

    /// The absolute path of the running executable.
    static func currentBinary() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return ConfigLoader.absolute(CommandLine.arguments[0], base: FileManager.default.currentDirectoryPath)
    }
}
