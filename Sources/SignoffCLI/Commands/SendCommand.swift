import ArgumentParser
import Foundation
import SignoffRunner

/// `signoff send`.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send", abstract: "Deliver due mail from the outbox, then exit.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reporting {
            let environment = try await global.environment()
            let report = try await BatchRunner(environment: environment).sendMail()
            await environment.store.close()
            if output.json {
                try Console.json(["sent": report.sent, "deferred": report.deferred, "failed": report.failed, "withdrawn": report.withdrawn])
            } else {
                Console.out("mail: \(report.sent) sent, \(report.deferred) deferred, \(report.failed) failed, \(report.withdrawn) withdrawn")
            }
        }
    }
}
