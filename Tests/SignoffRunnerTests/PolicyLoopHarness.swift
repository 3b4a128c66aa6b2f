import Foundation
import Logging
import Synchronization
import Testing
@testable import SignoffRunner
import SignoffStore
import SignoffTestSupport

/// The policy tests' clock: real time plus an offset the test moves by hand, so deadlines come
/// without sleeping while the runner's time never falls behind what a `signoff import` process
/// (real time) writes.
final class MovableClock: Sendable {
    private let offset: Mutex<Double>
    init(offset: Double = 0) { self.offset = Mutex(offset) }
    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    func advance(_ seconds: Double) { offset.withLock { $0 += seconds } }
}

/// A message a reviewer received (read from the reviewers' Maildir).
struct ReceivedMail: CustomStringConvertible {
    var raw: String
    var headers: [String: String]
    /// The whole message with quoted-printable soft breaks and escapes undone (for text checks).
    var text: String

    func header(_ name: String) -> String? { headers[name.lowercased()] }
    /// `text` with every run of white space as one space (mail bodies are wrapped).
    var flat: String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
    var to: String { header("Delivered-To") ?? "" }
    var messageID: String { header("Message-ID") ?? "" }
    var subject: String { header("Subject") ?? "" }
    /// The reply address's token (`approvals+TOKEN@…`), if the mail carries one.
    var token: String? {
        guard let r = header("Reply-To"), let plus = r.firstIndex(of: "+"), let at = r.firstIndex(of: "@") else { return nil }
        return String(r[r.index(after: plus)..<at])
    }
    var isReminder: Bool { subject.contains("Reminder:") }
    var description: String { "\(to): \(subject)" }

    init(raw: String) {
        self.raw = raw
        let normalized = raw.replacingOccurrences(of: "\r\n", with: "\n")
        let head = normalized.components(separatedBy: "\n\n").first ?? ""
        var headers: [String: String] = [:]
        var current: (String, String)?
        for line in head.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.first == " " || line.first == "\t", let c = current {
                current = (c.0, c.1 + " " + line.trimmingCharacters(in: .whitespaces))
                continue
            }
            if let c = current, headers[c.0] == nil { headers[c.0] = c.1 }
            guard let colon = line.firstIndex(of: ":") else { current = nil; continue }
            current = (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        if let c = current, headers[c.0] == nil { headers[c.0] = c.1 }
        self.headers = headers
        var bytes: [UInt8] = []
        let u = Array(normalized.replacingOccurrences(of: "=\n", with: "").utf8)
        var i = 0
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 48...57: return b - 48
            case 65...70: return b - 55
            default: return nil
            }
        }
        while i < u.count {
            if u[i] == 61, i + 2 < u.count, let h = hex(u[i + 1]), let l = hex(u[i + 2]) {
                bytes.append(h << 4 | l); i += 3
            } else { bytes.append(u[i]); i += 1 }
        }
        text = String(decoding: bytes, as: UTF8.self)
    }
}

/// A whole installation for the request-policy tests: `signoff init` on SQLite or PostgreSQL, mail
/// out over SMTP to one aiosmtpd server (the reviewers' mailboxes), replies over SMTP to a second
/// one that delivers into the maildrop, `signoff import` as a separate process, and `signoff run`
/// passes in-process with an injected clock (so deadlines and reminders come without sleeping).
final class PolicyLoop: @unchecked Sendable {  // @unchecked: used from one test task at a time
    let product: Product
    let clock: MovableClock
    let environment: RunnerEnvironment
    let mailboxes: SMTPServer
    let mx: SMTPServer

    private init(product: Product, clock: MovableClock, environment: RunnerEnvironment, mailboxes: SMTPServer, mx: SMTPServer) {
        self.product = product
        self.clock = clock
        self.environment = environment
        self.mailboxes = mailboxes
        self.mx = mx
    }

    static func make(_ backend: Backend, job: String, clock: MovableClock = MovableClock()) async throws -> PolicyLoop {
        let product = try Product.make(backend)
        let mailboxes = try SMTPServer(maildir: product.dir + "/mailboxes")
        let mx = try SMTPServer(maildir: product.dir + "/var/maildrop")
        let configPath = product.dir + "/signoff.yaml"
        var config = try String(contentsOfFile: configPath, encoding: .utf8)
        config = config.replacingOccurrences(of: "transport: outbox:var/outbox", with: "transport: smtp://127.0.0.1:\(mailboxes.port)")
        config = config.replacingOccurrences(of: "# authserv_id: mx.example.org", with: "authserv_id: mx.signoff.test")
        #expect(config.contains("authserv_id: mx.signoff.test") && config.contains("smtp://127.0.0.1"))
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let name = job.split(separator: "\n").first { $0.hasPrefix("name:") }.map { $0.dropFirst(5).trimmingCharacters(in: .whitespaces) } ?? "policy"
        try product.writeJob(name, job)
        let environment = try await Self.environment(product, clock: clock, owner: "runner-a")
        return PolicyLoop(product: product, clock: clock, environment: environment, mailboxes: mailboxes, mx: mx)
    }

    /// A runner environment on the installation with the test clock.
    static func environment(_ product: Product, clock: MovableClock, owner: String) async throws -> RunnerEnvironment {
        let config = try ConfigLoader.load(explicit: product.dir + "/signoff.yaml", databaseOverride: product.database)
        var env = try await RunnerEnvironment.open(config: config, logger: Logger(label: "test"))
        env.now = { clock.now() }
        env.owner = owner
        return env
    }

    var store: any RunStore { environment.store }

    /// One `signoff run` pass at the clock's time (timers, runs, then mail over SMTP).
    @discardableResult
    func tick() async throws -> RunPassReport { try await BatchRunner(environment: environment).runPass() }

    func enqueue(_ job: String, requestedBy: String? = nil) async throws -> String {
        try await store.enqueue(NewRun(job: job, requestedBy: requestedBy), now: clock.now()).run.id
    }

    /// Every message delivered to the reviewers' mailboxes, in delivery order (optionally for one address).
    func received(_ address: String? = nil) -> [ReceivedMail] {
        let folder = product.dir + "/mailboxes/new"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }
        func order(_ name: String) -> Int {
            // …PnnnQ<counter>.host: the server's delivery counter.
            guard let q = name.range(of: "Q"), let dot = name[q.upperBound...].firstIndex(of: ".") else { return 0 }
            return Int(name[q.upperBound..<dot]) ?? 0
        }
        return names.sorted { order($0) < order($1) }
            .compactMap { try? String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }
            .map(ReceivedMail.init(raw:))
            .filter { address == nil || $0.to.lowercased() == address!.lowercased() }
    }

    /// Request mails (they carry a token and are not reminders) to `address`.
    func requests(to address: String) -> [ReceivedMail] {
        received(address).filter { $0.token != nil && !$0.isReminder }
    }

    /// `reviewer` replies to `mail` with `body` on top, sent over SMTP to the reply address.
    /// With `inReplyToOnly`, the reply names its parent in `In-Reply-To` alone, as some clients do.
    func reply(to mail: ReceivedMail, from reviewer: String, _ body: String, inReplyToOnly: Bool = false) throws {
        let replyTo = (mail.header("Reply-To") ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "<> "))
        try #require(replyTo.contains("+"), "the mail to \(mail.to) has no reply token: \(mail.subject)")
        // As mail clients do (RFC 5322): the parent's References, then the parent's Message-ID.
        let references = ((mail.header("References").map { $0 + " " } ?? "") + mail.messageID)
        let quoted = mail.text.components(separatedBy: "\n").prefix(6).map { "> " + $0 }.joined(separator: "\r\n")
        let raw = [
            "From: Reviewer <\(reviewer)>", "To: \(replyTo)", "Subject: Re: \(mail.subject)",
            "Date: Sat, 21 Nov 2026 07:00:00 +0000", "Message-ID: <reply-\(UUID().uuidString)@example.org>",
            "In-Reply-To: \(mail.messageID)", inReplyToOnly ? "X-Client: minimal" : "References: \(references)", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "", body, "", "On Sat, 21 Nov 2026, Signoff <signoff@example.org> wrote:", quoted, "",
        ].joined(separator: "\r\n")
        try mx.send(Array(raw.utf8), envelopeFrom: reviewer, to: replyTo)
    }

    /// `signoff import --json` as its own process; the counts by outcome.
    func importReplies(sourceLocation: SourceLocation = #_sourceLocation) -> [String: Int] {
        let r = product.signoff("import", "--json")
        #expect(r.status == 0, "signoff import: \(r.stderr)", sourceLocation: sourceLocation)
        let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (object?["outcomes"] as? [String: Int]) ?? [:]
    }

    /// The first request of a run.
    func request(of runID: String) async throws -> RequestRecord {
        try #require(try await store.requests(runID: runID).first)
    }

    /// One SQL statement against the installation's database (sqlite3 or psql), for tampering tests.
    func sql(_ statement: String) throws -> String {
        let r: TestSupport.ProcessResult
        if let database = product.database {
            let psql = try #require(Product.psqlPath())
            r = try TestSupport.run(psql, [database, "-v", "ON_ERROR_STOP=1", "-qAtc", statement])
        } else {
            let sqlite = try #require(TestSupport.which("sqlite3"), "the sqlite3 command-line tool is needed (apt-get install sqlite3)")
            r = try TestSupport.run(sqlite, [product.dir + "/var/signoff.sqlite", statement])
        }
        #expect(r.status == 0, "SQL failed: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func close() async {
        await environment.store.close()
        mailboxes.stop()
        mx.stop()
        product.cleanUp()
    }
}
