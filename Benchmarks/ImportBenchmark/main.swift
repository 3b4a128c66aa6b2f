// ImportBenchmark: import throughput — messages parsed, decided and committed per second from a
// Maildir of replies (each an APPROVE for its own pending request) — measured side by side with
// a Python script that only parses the same files with `email` and extracts the text part.
//
//   ImportBenchmark [--messages 10000] [--database sqlite:PATH | postgres://…]… [--python PATH]
//                   [--batch-size N] [--commits-in-flight N] [--classify-rounds N] [--no-silent]
//
// Without --database it measures SQLite (a temporary file) and, when SIGNOFF_BENCH_POSTGRES or
// SIGNOFF_TEST_POSTGRES is set, that PostgreSQL database too. Python is $SIGNOFF_PYTHON or
// python3. Prints one JSON object. Setup (runs, requests, tokens, the Maildir) is not timed.
//
// The headline import is what `signoff import` runs (`Importer.pass`: the runner's interpreter and
// policies, confirmations rendered from the built-in templates and queued in the decisions'
// transactions; `confirmations_queued` counts them in the outbox). `silent_notices` is the same
// import, on fresh runs, with `SilentNoticeComposer` (no mail).
//
// Each import entry carries `phase_seconds`: wall-clock seconds per phase summed over batches
// (claim, read, token_lookup, classify, compose, wait_for_commit, store_commit, notices, move);
// phases of neighbouring batches overlap, so they add up to more than `seconds`. With
// SIGNOFF_BENCH_TIMELINE set, every phase interval (phase, start and end in ms) goes to standard
// error, to see how the batches overlap. `cpu_microseconds_per_message` is this process's CPU
// time over the import (all threads; on PostgreSQL the server's is not included).
//
// `ImportBenchmark parse-only [--messages N] [--rounds R]` times parse + classify + decide alone,
// in memory, on one thread, and reports wall and CPU microseconds per message (for profiling).
//
// `ImportBenchmark latency …` measures instead the time from a reply landing in new/ to its run
// being runnable, with a real `signoff worker` (see Latency.swift).
import Foundation
import Logging
import SignoffMail
import SignoffRunner
import SignoffStore

let pythonScript = #"""
import email, email.policy, os, sys, time
folder = sys.argv[1]
names = sorted(os.listdir(folder))
start = time.perf_counter()
chars = 0
for name in names:
    with open(os.path.join(folder, name), 'rb') as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    body = msg.get_body(preferencelist=('plain', 'html'))
    if body is not None:
        chars += len(body.get_content())
elapsed = time.perf_counter() - start
print(f"{len(names)} {elapsed} {chars}")
"""#

func json(_ value: Any) -> String {
    switch value {
    case let s as String: return SQLString.quote(s)
    case let d as Double: return String(format: "%.2f", d)
    case let i as Int: return String(i)
    case let a as [Any]: return "[" + a.map(json).joined(separator: ", ") + "]"
    case let o as KeyValuePairs<String, Any>: return "{" + o.map { "\(SQLString.quote($0.key)): \(json($0.value))" }.joined(separator: ", ") + "}"
    default: return "null"
    }
}

enum SQLString {
    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// CPU time of this process so far (all threads), in seconds.
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func loadAverage() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return -1 }
    return Double(text.split(separator: " ").first ?? "") ?? -1
}

if CommandLine.arguments.dropFirst().first == "parse-only" {
    // `ImportBenchmark parse-only [--messages N] [--rounds R]`: parse + classify + decide only,
    // in memory, one thread (for profiling; no store, no Python).
    var n = 10_000, rounds = 3
    var args = CommandLine.arguments.dropFirst(2).makeIterator()
    while let a = args.next() {
        if a == "--messages" { n = Int(args.next() ?? "") ?? n } else if a == "--rounds" { rounds = Int(args.next() ?? "") ?? rounds }
    }
    let tokens = (0..<n).map { "bench\($0)x\(UUID().uuidString.prefix(8).lowercased())" }
    let raws = tokens.enumerated().map { replyMessage($0.offset, token: $0.element) }
    // The token "store": built before timing, so a lookup costs one dictionary read.
    let byToken = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { i, token in
        (token, InboundTokenInfo(requestID: "r\(i)", reviewer: EmailAddress("reviewer@example.org"), expiresAt: nil, state: .open,
                                 expected: .approval(rejectReasonRequired: true), issuedMessageIDs: ["req-\(i)@signoff.bench"]))
    })
    let classifier = InboundClassifier(config: InboundConfig(replyAddress: EmailAddress("approvals@signoff.bench"), strictAuthservID: nil),
                                       lookup: { token in byToken[token] })
    let at = Date()
    // The timed loop runs in a detached task: `classify` is nonisolated, so awaiting it from the
    // main actor would hop executors twice per message (thread switches, not classifier work).
    let (applied, seconds, cpu) = try await Task.detached { [rounds] () async throws -> (Int, Double, Double) in
        var applied = 0
        let cpuStart = cpuSeconds()
        let start = Date()
        for _ in 0..<rounds {
            for raw in raws where try await classifier.classify(raw, now: at).outcome == .applied { applied += 1 }
        }
        return (applied, Date().timeIntervalSince(start), cpuSeconds() - cpuStart)
    }.value
    print(json(["benchmark": "parse-only", "messages": n * rounds, "applied": applied, "seconds": seconds,
                "messages_per_second": Double(n * rounds) / seconds, "microseconds_per_message": seconds * 1e6 / Double(n * rounds),
                "cpu_microseconds_per_message": cpu * 1e6 / Double(n * rounds),
                "load_average_1m": loadAverage()] as KeyValuePairs<String, Any>))
    exit(0)
}

if CommandLine.arguments.dropFirst().first == "latency" {
    do {
        try await LatencyBenchmark.run(Array(CommandLine.arguments.dropFirst(2)))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("ImportBenchmark latency: \(error)\n".utf8))
        exit(1)
    }
}

var messages = 10_000
var classifyRounds = 1
/// Also measure the import with silent notices (`--no-silent`: only the headline import).
var withSilent = true
var batchSize: Int? = nil
var commitsInFlight: Int? = nil
var databases: [String] = []
let env = ProcessInfo.processInfo.environment
var python = env["SIGNOFF_PYTHON"] ?? "/usr/bin/python3"
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    switch a {
    case "--messages": messages = Int(it.next() ?? "") ?? messages
    case "--database": if let d = it.next() { databases.append(d) }
    case "--python": python = it.next() ?? python
    case "--batch-size": batchSize = Int(it.next() ?? "")
    case "--commits-in-flight": commitsInFlight = Int(it.next() ?? "")
    case "--classify-rounds": classifyRounds = max(1, Int(it.next() ?? "") ?? 1)
    case "--no-silent": withSilent = false
    default:
        FileHandle.standardError.write(Data("usage: ImportBenchmark [--messages N] [--database URL]... [--python PATH] [--batch-size N] [--commits-in-flight N] [--classify-rounds N] [--no-silent]\n".utf8))
        exit(64)
    }
}

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-importbench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
if databases.isEmpty {
    databases = ["sqlite:" + dir.appendingPathComponent("signoff.db").path]
    if let pg = env["SIGNOFF_BENCH_POSTGRES"] ?? env["SIGNOFF_TEST_POSTGRES"], !pg.isEmpty { databases.append(pg) }
}
var logger = Logger(label: "signoff.bench")
logger.logLevel = .warning
let now = Date()
let config = InboundConfig(replyAddress: EmailAddress("approvals@signoff.bench"), strictAuthservID: nil)

/// The benchmark's reply number `i`: multipart/alternative, a quoted-printable text part that
/// approves above 30 quoted lines, and an HTML part.
func replyMessage(_ i: Int, token: String) -> [UInt8] {
    let quoted = (0..<30).map { "> line \($0) of the quoted request text, as most clients quote it back" }.joined(separator: "\r\n")
    let raw = """
        Return-Path: <reviewer@example.org>\r
        Delivered-To: approvals+\(token)@signoff.bench\r
        From: Reviewer <reviewer@example.org>\r
        To: approvals+\(token)@signoff.bench\r
        Subject: Re: [signoff] Please review \(i)\r
        Message-ID: <reply-\(i)-\(UUID().uuidString)@client.example>\r
        In-Reply-To: <req-\(i)@signoff.bench>\r
        MIME-Version: 1.0\r
        Content-Type: multipart/alternative; boundary="b\(i)"\r
        \r
        --b\(i)\r
        Content-Type: text/plain; charset=utf-8\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        APPROVE: looks good, ship it =E2=9C=93\r
        \r
        On Mon, 3 Feb 2026 at 10:00, Signoff <approvals@signoff.bench> wrote:\r
        \(quoted)\r
        --b\(i)\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <div>APPROVE: looks good, ship it</div><blockquote>quoted</blockquote>\r
        --b\(i)--\r

        """
    return Array(raw.utf8)
}

/// The runs of the last `setUp` (the confirmations counted are theirs: a shared database may hold others).
nonisolated(unsafe) var benchRuns: Set<String> = []

/// One waiting run with one pending request and one token per message, and a Maildir holding
/// one reply per token.
@MainActor func setUp(_ store: any RunStore, maildir: Maildir) async throws -> [String] {
    let runs = try await store.enqueueMany((0..<messages).map { i in NewRun(job: "bench", uniqueKey: "bench-\(UUID().uuidString)-\(i)") }, now: now)
    let runIDs = Set(runs.map(\.id))
    benchRuns = runIDs
    var tokens: [String] = []
    var claimed: [ClaimedRun] = []
    while claimed.count < messages {
        // A shared database may hold other runnable runs: claim until ours are all taken.
        let batch = try await store.claimRuns(owner: "bench", limit: 1000, leaseSeconds: 3600, now: now)
        if batch.isEmpty { break }
        claimed += batch.filter { runIDs.contains($0.run.id) }
    }
    for (i, c) in claimed.enumerated() {
        let token = "bench\(i)x\(UUID().uuidString.prefix(8).lowercased())"
        tokens.append(token)
        // The payload the runner writes for an approval step (the importer and the notices read it),
        // with the flow state the runner keeps in it: who enqueued the run, the job input, and the
        // earlier llm step's draft (the importer skips it but still has to read past it).
        var draft = StepResult(kind: "llm")
        draft.text = "Draft \(i): the quarterly figures, for approval before they are published.\n\n"
            + String(repeating: "Revenue grew 12 % in EMEA and 8 % in APAC; costs were flat. \"Net\" margin: 21.4 %.\n", count: 12)
        draft.model = "gpt-4o-mini"
        draft.promptTokens = 1_834
        draft.completionTokens = 412
        draft.attempts = 1
        let state = FlowState(run: RunInfo(id: c.run.id, job: "bench", attempt: c.run.attempt,
                                           requestedBy: "Requester <requester@example.org>", startedAt: now),
                              input: ["quarter": .string("Q3/2026"), "regions": .array([.string("EMEA"), .string("APAC")]),
                                      "threshold": .number(0.05)],
                              results: ["draft": draft])
        let human = HumanRequest(kind: .approval, stepID: "review", title: "Please review \(i)",
                                 body: "Draft \(i): the quarterly figures, for approval before they are published.",
                                 reviewers: ["reviewer@example.org"], state: state)
        // The policy the runner stores for a step with `expires_after: 3d` and two daily reminders
        // (the importer reads it for every reply: reminder Message-IDs, `forbid:`, delegation).
        let day = 86_400.0, t = now.timeIntervalSince1970
        let policy = #"{"delegates":[],"escalateTo":[],"expiresAfter":259200,"forbid":[],"onTimeout":"reject","remindEvery":86400,"# +
            #""reminderSchedule":[\#(t + day),\#(t + 2 * day)],"reminders":2}"#
        let request = NewRequest(id: "bench-req-\(c.run.id)", executorID: "review", stepID: "review", requestType: HumanRequest.typeName,
                                 requestData: try JSONEncoder().encode(human),
                                 responseType: "approval", reviewers: ["reviewer@example.org"],
                                 tokens: [NewToken(tokenHash: InboundClassifier.tokenHash(token), reviewer: "reviewer@example.org",
                                                   expiresAt: now.addingTimeInterval(3 * day), messageID: "<req-\(i)@signoff.bench>")],
                                 dueAt: now.addingTimeInterval(3 * day), remindAt: now.addingTimeInterval(day), policy: Data(policy.utf8))
        _ = try await store.pause(c.lease, checkpoint: nil, requests: [request], mail: [], delivered: [], now: now)
    }
    try maildir.create()
    for (i, token) in tokens.enumerated() {
        try maildir.deliver(replyMessage(i, token: token))
    }
    return tokens
}

/// Python's parse-only rate over `folder` (messages per second).
@MainActor func pythonRate(_ folder: URL) throws -> Double {
    let scriptURL = dir.appendingPathComponent("parse_only.py")
    try pythonScript.write(to: scriptURL, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [scriptURL.path, folder.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let parts = out.split(separator: " ")
    let count = parts.first.flatMap { Double($0) } ?? 0
    let seconds = parts.count >= 2 ? Double(parts[1]) ?? 0 : 0
    return seconds > 0 ? count / seconds : 0
}

/// The configuration `signoff import` would read: this database, the Maildir, built-in templates.
func benchConfig(database: String, maildir: URL, n: Int) -> SignoffConfig {
    SignoffConfig(file: nil, baseDirectory: dir.path, database: database, jobs: dir.appendingPathComponent("jobs").path,
                  templates: dir.appendingPathComponent("templates").path, maildrop: maildir.path,
                  inbox: dir.appendingPathComponent("inbox-\(n)").path, archive: maildir.appendingPathComponent("archive").path,
                  quarantine: maildir.appendingPathComponent("quarantine").path,
                  mail: .init(from: "Signoff <signoff@signoff.bench>", replyTo: "approvals@signoff.bench",
                              transport: "outbox:" + dir.appendingPathComponent("sent").path))
}

let loadBefore = loadAverage()
var imports: [Any] = []
var pyFolder: URL? = nil
var firstTokens: [String] = []
var runIndex = 0
for url in databases {
    var entry: [String: Any] = [:]
    // Real notices (what `signoff import` does: `Importer.pass`, the templates' confirmations
    // queued in the decisions' transactions), then the same import with `SilentNoticeComposer`.
    for real in withSilent ? [true, false] : [true] {
        runIndex += 1
        let maildir = Maildir(root: dir.appendingPathComponent("Maildir-\(runIndex)"))
        var environment = try await RunnerEnvironment.open(config: benchConfig(database: url, maildir: maildir.root, n: runIndex), logger: logger)
        environment.now = { now }
        let store = environment.store
        let tokens = try await setUp(store, maildir: maildir)
        if pyFolder == nil {
            // Copy the messages aside so Python (and the parse-only figure) read exactly the same files.
            let copy = dir.appendingPathComponent("python-input")
            try FileManager.default.copyItem(at: maildir.newDirectory, to: copy)
            pyFolder = copy
            firstTokens = tokens
        }
        // Python right before the import, so both see the same machine load.
        let pyRate = try pythonRate(pyFolder!)
        var pass = Importer.pass(environment, maildir: maildir, inbox: nil, reply: EmailAddress("approvals@signoff.bench"))
        pass.logger = logger
        if !real { pass.notices = SilentNoticeComposer() }
        if let batchSize { pass.batchSize = batchSize }
        pass.commitsInFlight = commitsInFlight
        let timings = ImportTimings()
        pass.timings = timings
        // Timed: one import pass (announced on standard error, for attaching a profiler).
        FileHandle.standardError.write(Data("importing \(messages) replies (\(store.backend.rawValue), \(real ? "confirmations" : "silent notices"))\n".utf8))
        let cpuStart = cpuSeconds()
        let start = Date()
        let summary = try await pass.run()
        let elapsed = Date().timeIntervalSince(start)
        let cpu = cpuSeconds() - cpuStart
        FileHandle.standardError.write(Data("imported\n".utf8))
        if env["SIGNOFF_BENCH_TIMELINE"] != nil {
            let t0 = timings.timeline.map(\.1).min() ?? 0
            for (p, a, b) in timings.timeline.sorted(by: { $0.1 < $1.1 }) {
                FileHandle.standardError.write(Data("TL \(p) \(Double(a - t0) / 1e6) \(Double(b - t0) / 1e6)\n".utf8))
            }
        }
        let queued = try await store.dueMail(now: now.addingTimeInterval(86_400), limit: messages * 2 + 10)
        let confirmations = queued.filter { $0.kind == .confirmation && $0.runID.map(benchRuns.contains) == true }.count
        let key = real ? "" : "silent_"
        entry[key + "python"] = pyRate
        entry["database"] = store.backend.rawValue
        entry[key + "applied"] = summary.outcomes["applied"] ?? 0
        entry[key + "errors"] = summary.errors
        entry[key + "seconds"] = elapsed
        entry[key + "cpu_microseconds_per_message"] = cpu * 1e6 / Double(max(1, summary.processed))
        entry[key + "messages_per_second"] = Double(summary.processed) / elapsed
        entry[key + "confirmations_queued"] = confirmations
        entry[key + "phases"] = timings.snapshot
        await store.close()
    }
    imports.append(entry)
}

// Timed, without the store: parse + classify + decide every file (tokens looked up in memory).
// (the in-memory token "store" is built before timing: a lookup is one dictionary read)
let memoryTokens = Dictionary(uniqueKeysWithValues: firstTokens.enumerated().map { i, token in
    (token, InboundTokenInfo(requestID: "r\(i)", reviewer: EmailAddress("reviewer@example.org"), expiresAt: nil, state: .open,
                             expected: .approval(rejectReasonRequired: true), issuedMessageIDs: ["req-\(i)@signoff.bench"]))
})
let memoryClassifier = InboundClassifier(config: config, lookup: { token in memoryTokens[token] })
let files = try FileManager.default.contentsOfDirectory(atPath: pyFolder!.path).sorted()
let classifyStart = Date()
var decided = 0
for _ in 0..<classifyRounds {
    for name in files {
        let bytes = Array(try Data(contentsOf: pyFolder!.appendingPathComponent(name)))
        if try await memoryClassifier.classify(bytes, now: now).outcome == .applied { decided += 1 }
    }
}
let classifyRate = Double(decided) / Date().timeIntervalSince(classifyStart)
let pyRateParse = try pythonRate(pyFolder!)

let loadAfter = loadAverage()

/// Phase timings as a JSON object, in pipeline order (phases overlap across batches).
func phaseFields(_ phases: [String: Double]) -> KeyValuePairs<String, Any> {
    let p = { (name: String) -> Any in phases[name] ?? 0.0 }
    return ["claim": p("claim"), "read": p("read"), "token_lookup": p("token_lookup"), "classify": p("classify"),
            "compose": p("compose"), "wait_for_commit": p("wait_for_commit"), "store_commit": p("store_commit"), "notices": p("notices"),
            "move": p("move")]
}

func ratio(_ x: Double, _ py: Double) -> Double { py > 0 ? x / py : 0 }
let importFields: [Any] = imports.map { entry -> Any in
    let e = entry as! [String: Any]
    let rate = e["messages_per_second"] as! Double
    let py = e["python"] as! Double
    let silent = e["silent_messages_per_second"] as? Double ?? 0
    let silentPy = e["silent_python"] as? Double ?? 0
    return ["database": e["database"]!, "messages_per_second": rate, "python_parse_only_messages_per_second": py,
            "ratio_vs_python": ratio(rate, py), "seconds": e["seconds"]!, "cpu_microseconds_per_message": e["cpu_microseconds_per_message"]!,
            "applied": e["applied"]!, "errors": e["errors"]!,
            "confirmations_queued": e["confirmations_queued"]!,
            "phase_seconds": phaseFields(e["phases"] as! [String: Double]),
            "silent_notices": ["messages_per_second": silent, "python_parse_only_messages_per_second": silentPy,
                               "ratio_vs_python": ratio(silent, silentPy), "seconds": e["silent_seconds"] ?? 0,
                               "cpu_microseconds_per_message": e["silent_cpu_microseconds_per_message"] ?? 0, "applied": e["silent_applied"] ?? 0,
                               "errors": e["silent_errors"] ?? 0, "confirmations_queued": e["silent_confirmations_queued"] ?? 0,
                               "phase_seconds": phaseFields(e["silent_phases"] as? [String: Double] ?? [:])] as KeyValuePairs<String, Any>,
    ] as KeyValuePairs<String, Any>
}
print(json([
    "benchmark": "import",
    "messages": messages,
    "cores": ProcessInfo.processInfo.activeProcessorCount,
    "load_average_1m_before": loadBefore,
    "load_average_1m_after": loadAfter,
    "import": importFields,
    "parse_and_decide_only_messages_per_second": classifyRate,
    "python_parse_only_messages_per_second": pyRateParse,
    "parse_and_decide_ratio_vs_python": ratio(classifyRate, pyRateParse),
    "target_ratio": 10,
] as KeyValuePairs<String, Any>))
