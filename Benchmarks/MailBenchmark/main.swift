// Mails rendered + composed per second, single-threaded, per template kind (request,
// confirmation): `render_compose` is template render + MIME composition + RFC 5322 bytes, the
// work the importer does for each confirmation; `render` is the template part alone;
// `rfc5322` is the bytes alone (headers, quoted-printable) of an already composed message;
// `context` is building the benchmark's template context alone (included in the others). Then request
// mails delivered per second to a local SMTP server (scripts/smtp_server.py, started here unless
// --port is given) and to an outbox folder (skipped with --compose-only).
// Prints one JSON object on stdout. Speed is reported, never asserted.
//
//   swift run -c release MailBenchmark [--count N] [--compose-count N] [--rounds R] [--concurrency C]
//                                      [--port P] [--python PATH] [--compose-only]
import Foundation
import SignoffMail

struct Options {
    var count = 300
    /// Mails per round for the render/compose figures (best of `rounds` rounds is reported).
    var composeCount = 4_000
    var rounds = 9
    var composeOnly = false
    var concurrency = 4
    var port: Int?
    var python: String?

    init(_ args: [String]) {
        var i = 1
        while i < args.count {
            let value = i + 1 < args.count ? args[i + 1] : ""
            switch args[i] {
            case "--count": count = Int(value) ?? count; i += 1
            case "--compose-count": composeCount = max(1, Int(value) ?? composeCount); i += 1
            case "--rounds": rounds = max(1, Int(value) ?? rounds); i += 1
            case "--compose-only": composeOnly = true
            case "--concurrency": concurrency = max(1, Int(value) ?? concurrency); i += 1
            case "--port": port = Int(value); i += 1
            case "--python": python = value; i += 1
            default:
                FileHandle.standardError.write(Data("unknown option \(args[i])\n".utf8))
                exit(2)
            }
            i += 1
        }
    }
}

let options = Options(CommandLine.arguments)
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let scratch = NSTemporaryDirectory() + "signoff-mailbench-\(UUID().uuidString.prefix(8))"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)

let composer = MailComposer(templates: .builtin, from: EmailAddress("signoff@example.org", displayName: "Signoff"),
                            replyAddress: EmailAddress("approvals@example.org"))

func context(_ i: Int) -> MailTemplateContext {
    MailTemplateContext(
        job: .init(name: "weekly-report", description: "Build the report, let the editor approve it, then publish."),
        run: .init(id: "r-\(i)", attempt: 1), stepID: "review",
        request: .init(id: "q-\(i)", title: "Publish the weekly report #\(i)?",
                       body: "Revenue is up 4%.\nCosts are flat.\nHeadcount: 42 (Zürich, São Paulo, 東京).",
                       fields: [.init(name: "week", value: "47"), .init(name: "owner", value: "Eda")]),
        reviewer: EmailAddress("reviewer\(i)@example.org", displayName: "Reviewer \(i)"),
        deadline: Date().addingTimeInterval(72 * 3600),
        links: [.init(label: "Draft", url: "https://reports.example.org/w47")])
}

func makeMail(_ i: Int) throws -> MailMessage {
    try composer.compose(.request, context: context(i), token: ReplyToken())
}

/// A confirmation as the importer sends it: the request's context plus the recorded decision,
/// in the request's thread.
func makeConfirmation(_ i: Int) throws -> MailMessage {
    var ctx = context(i)
    ctx.decision = .init(outcome: "approve", reason: i % 2 == 0 ? "Looks right; numbers match the ledger." : nil,
                         by: ctx.reviewer.address, at: Date())
    return try composer.compose(.confirmation, context: ctx, inReplyTo: "<req-\(i)@example.org>")
}

/// Sends `count` freshly rendered mails through `transport` with `concurrency` in flight.
func measure(_ transport: any MailTransport, count: Int, concurrency: Int) async throws -> (seconds: Double, bytes: Int) {
    let clock = ContinuousClock()
    let started = clock.now
    let bytes = try await withThrowingTaskGroup(of: Int.self) { group in
        var next = 0
        var total = 0
        func add() {
            let i = next
            next += 1
            group.addTask {
                let mail = try makeMail(i)
                let raw = mail.rfc5322()
                _ = try await transport.send(raw: raw, from: mail.from, to: mail.to)
                return raw.count
            }
        }
        for _ in 0..<min(concurrency, count) { add() }
        while let n = try await group.next() {
            total += n
            if next < count { add() }
        }
        return total
    }
    let elapsed = clock.now - started
    let c = elapsed.components
    return (Double(c.seconds) + Double(c.attoseconds) / 1e18, bytes)
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

func rate(_ n: Int, _ s: Double) -> Double { s > 0 ? (Double(n) / s * 10).rounded() / 10 : 0 }

/// Render + compose (and render alone) of one kind, single-threaded: the best of `--rounds`
/// short rounds, since the machine is shared and the slower rounds measure the neighbours.
func composeFigures(_ kind: MailTemplateKind, _ make: (Int) throws -> MailMessage) throws -> [String: Any] {
    let clock = ContinuousClock()
    let n = options.composeCount
    for i in 0..<min(n, 500) { _ = try make(i).rfc5322() }  // warm up (lazy statics, caches)
    var best = Double.infinity
    var bytes = 0
    for _ in 0..<options.rounds {
        bytes = 0
        let start = clock.now
        for i in 0..<n { bytes += try make(i).rfc5322().count }
        best = min(best, seconds(clock.now - start))
    }
    var bestRender = Double.infinity
    for _ in 0..<options.rounds {
        let start = clock.now
        for i in 0..<n {
            var ctx = context(i)
            if kind == .confirmation { ctx.decision = .init(outcome: "approve", by: ctx.reviewer.address, at: Date()) }
            _ = try composer.templates.render(kind, context: ctx, tag: "ab12")
        }
        bestRender = min(bestRender, seconds(clock.now - start))
    }
    // RFC 5322 bytes alone (headers, QP) of messages composed beforehand.
    let composed = try (0..<min(n, 1000)).map { try make($0) }
    var bestEncode = Double.infinity
    for _ in 0..<options.rounds {
        let start = clock.now
        var total = 0
        for i in 0..<n { total &+= composed[i % composed.count].rfc5322().count }
        bestEncode = min(bestEncode, seconds(clock.now - start))
        if total == 0 { print("") }
    }
    // Building the contexts alone (what every figure above includes; EmailAddress init and
    // the test data's string interpolation, not the mail code).
    var bestContext = Double.infinity
    for _ in 0..<options.rounds {
        let start = clock.now
        var total = 0
        for i in 0..<n {
            var ctx = context(i)
            if kind == .confirmation { ctx.decision = .init(outcome: "approve", by: ctx.reviewer.address, at: Date()) }
            total &+= ctx.request.title.utf8.count
        }
        bestContext = min(bestContext, seconds(clock.now - start))
        if total == 0 { print("") }
    }
    return [
        "context_microseconds": (bestContext / Double(n) * 1e7).rounded() / 10,
        "rfc5322_microseconds": (bestEncode / Double(n) * 1e7).rounded() / 10,
        "count_per_round": n,
        "rounds": options.rounds,
        "average_message_bytes": bytes / n,
        "render_compose_per_second": rate(n, best),
        "render_compose_microseconds": (best / Double(n) * 1e7).rounded() / 10,
        "render_per_second": rate(n, bestRender),
    ]
}

let request = try composeFigures(.request, makeMail)
var confirmation = try composeFigures(.confirmation, makeConfirmation)

// The runner builds its composer per notice (`RunnerEnvironment.composer()` parses `mail.from` and
// `mail.reply_to` each time); this is what that costs on top of the figures above.
do {
    let clock = ContinuousClock()
    let n = options.composeCount
    var best = Double.infinity
    for _ in 0..<options.rounds {
        let start = clock.now
        for i in 0..<n {
            let from = EmailAddress.parseList("Signoff <signoff@example.org>").first!
            let reply = EmailAddress.parseList("approvals@example.org").first!
            let perMail = MailComposer(templates: composer.templates, from: from, replyAddress: reply)
            var ctx = context(i)
            ctx.decision = .init(outcome: "approve", by: ctx.reviewer.address, at: Date())
            _ = try perMail.compose(.confirmation, context: ctx, inReplyTo: "<req-\(i)@example.org>").rfc5322()
        }
        best = min(best, seconds(clock.now - start))
    }
    confirmation["render_compose_with_composer_per_mail_per_second"] = rate(n, best)
}
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? ""
}

if options.composeOnly {
    let report: [String: Any] = ["benchmark": "mail", "request": request, "confirmation": confirmation,
                                 "load_average": loadAverage()]
    let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: json, as: UTF8.self))
    exit(0)
}

// Render + compose of request mails (the figure this benchmark always reported).
let clock = ContinuousClock()
var composeBytes = 0
let composeStart = clock.now
for i in 0..<options.count { composeBytes += try makeMail(i).rfc5322().count }
let composeSeconds = seconds(clock.now - composeStart)

// The SMTP server.
var server: Process?
var port = options.port
if port == nil {
    let python = options.python ?? ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"] ?? root.path + "/.build/pyvenv/bin/python"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [root.path + "/scripts/smtp_server.py", "--maildir", scratch + "/Maildir", "--watch-stdin"]
    let out = Pipe()
    process.standardOutput = out
    process.standardInput = Pipe()
    process.standardError = FileHandle.nullDevice
    try process.run()
    var line = [UInt8]()
    while true {
        let byte = out.fileHandleForReading.readData(ofLength: 1)
        if byte.isEmpty || byte.first == 0x0A { break }
        line.append(contentsOf: byte)
    }
    port = Int(String(decoding: line, as: UTF8.self))
    server = process
    if port == nil {
        FileHandle.standardError.write(Data("could not start scripts/smtp_server.py with \(python); run scripts/test once to create the venv or pass --python\n".utf8))
        exit(1)
    }
}
let smtp = try SMTPTransport(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(port!)"))
let smtpResult = try await measure(smtp, count: options.count, concurrency: options.concurrency)
let smtpSequential = try await measure(smtp, count: max(1, options.count / 2), concurrency: 1)
server?.terminate()
server?.waitUntilExit()

let folder = OutboxFolderTransport(folder: scratch + "/outbox")
let folderResult = try await measure(folder, count: options.count, concurrency: 1)

try? FileManager.default.removeItem(atPath: scratch)

let report: [String: Any] = [
    "benchmark": "mail",
    "count": options.count,
    "average_message_bytes": composeBytes / max(1, options.count),
    "render_compose_per_second": rate(options.count, composeSeconds),
    "smtp_per_second": rate(options.count, smtpResult.seconds),
    "smtp_concurrency": options.concurrency,
    "smtp_sequential_per_second": rate(max(1, options.count / 2), smtpSequential.seconds),
    "outbox_folder_per_second": rate(options.count, folderResult.seconds),
    "request": request,
    "confirmation": confirmation,
    "load_average": loadAverage(),
]
let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
print(String(decoding: json, as: UTF8.self))
