import Foundation

/// scripts/smtp_server.py (aiosmtpd) on a free loopback port, delivering into a Maildir with the
/// trace headers an MTA adds. Its stdin is a pipe it watches: when the tests end, however they
/// end, the server goes too.
public final class SMTPServer: Sendable {
    public let port: Int
    public let maildir: String
    /// The server's stderr: one line per transaction.
    public let logPath: String
    private let child: Subprocess

    /// `flags` are smtp_server.py's (`--defer-first 1`, `--tls-cert …`); `maildir` defaults to a
    /// fresh one.
    public init(_ flags: [String] = [], maildir: String? = nil) throws {
        let dir = try TestEnvironment.temporaryDirectory("smtp")
        self.maildir = maildir ?? dir + "/Maildir"
        logPath = dir + "/server.log"
        child = try Subprocess(try TestEnvironment.python(),
                               [TestEnvironment.repositoryRoot + "/scripts/smtp_server.py", "--maildir", self.maildir, "--watch-stdin"] + flags,
                               stdin: .pipe, stdout: .pipe, stderr: .file(logPath))
        // The first line on stdout is the port.
        guard let line = child.readLine(), let port = Int(line.trimmingCharacters(in: .whitespaces)) else {
            child.terminate()
            child.waitUntilExit()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw Subprocess.Failure("scripts/smtp_server.py did not print its port (is aiosmtpd installed? scripts/test installs it): \(log)")
        }
        self.port = port
    }

    deinit { stop() }

    public func stop() {
        guard child.isRunning else { return }
        child.closeStdin()
        child.terminate()
        child.waitUntilExit()
    }

    /// The server's log.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Messages delivered into Maildir/new, oldest first.
    public func delivered() throws -> [[UInt8]] {
        let dir = maildir + "/new"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return try names.sorted().map { Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))) }
    }

    /// Sends `raw` from `envelopeFrom` to `to` with Python's smtplib (a real client).
    public func send(_ raw: [UInt8], envelopeFrom: String, to: String) throws {
        try Self.send(raw, port: port, envelopeFrom: envelopeFrom, to: to)
    }

    /// Sends `raw` to the SMTP server on loopback `port` with Python's smtplib.
    public static func send(_ raw: [UInt8], port: Int, envelopeFrom: String, to: String) throws {
        let script = "import smtplib,sys; s=smtplib.SMTP('127.0.0.1', \(port)); s.sendmail(sys.argv[1], [sys.argv[2]], sys.stdin.buffer.read()); s.quit()"
        let result = try Subprocess.run(try TestEnvironment.python(), ["-c", script, envelopeFrom, to], input: raw)
        guard result.status == 0 else { throw Subprocess.Failure("smtplib could not send to port \(port): \(result.stderr)") }
    }
}
