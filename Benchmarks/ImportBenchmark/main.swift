// ImportBenchmark: import throughput — messages parsed, decided and committed per second from a
// Maildir of replies (each an APPROVE for its own pending request) — measured side by side with
// a Python script that only parses the same files with `email` and extracts the text part.
//
//   ImportBenchmark [--messages 10000] [--database sqlite:PATH | postgres://…] [--python PATH]
//                   [--classify-rounds N]   (repeat the store-less parse-and-decide phase, for profiling)
//
// Prints one JSON object. Setup (runs, requests, tokens, the Maildir) is not timed.
import Foundation
import Logging
import SignoffMail
import SignoffRunner
import SignoffStore

struct ApprovalInterpreter: ImportRequestInterpreter {
    func expectedResponse(for request: RequestRecord) -> ExpectedResponse? { .approval(rejectReasonRequired: true) }
    func response(for decision: Decision, request: RequestRecord, by reviewer: String, via: String?) -> Data? {
        switch decision {
        case .approve: return Data(#"{"approved":true}"#.utf8)
        case .reject: return Data(#"{"approved":false}"#.utf8)
        default: return nil
        }
    }
}

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

func emit(_ fields: [(String, String)]) {
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
}

var messages = 10_000
var classifyRounds = 1
var database: String? = nil
var python = ProcessInfo.processInfo.environment["SIGNOFF_PYTHON"] ?? "/usr/bin/python3"
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    switch a {
    case "--messages": messages = Int(it.next() ?? "") ?? messages
    case "--database": database = it.next()
    case "--python": python = it.next() ?? python
    case "--classify-rounds": classifyRounds = max(1, Int(it.next() ?? "") ?? 1)
    default:
        FileHandle.standardError.write(Data("usage: ImportBenchmark [--messages N] [--database URL] [--python PATH]\n".utf8))
        exit(64)
    }
}

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-importbench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
let url = database ?? "sqlite:" + dir.appendingPathComponent("signoff.db").path
var logger = Logger(label: "signoff.bench")
logger.logLevel = .warning
let store = try await openStore(url: url, logger: logger)
let now = Date()

// Setup: one waiting run with one pending request and one token per message.
let runs = try await store.enqueueMany((0..<messages).map { i in NewRun(job: "bench", uniqueKey: "bench-\(UUID().uuidString)-\(i)") }, now: now)
let runIDs = Set(runs.map(\.id))
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
    let request = NewRequest(id: "bench-req-\(c.run.id)", executorID: "review", requestType: "ApprovalRequest", requestData: Data("{}".utf8),
                             responseType: "approval", reviewers: ["reviewer@example.org"],
                             tokens: [NewToken(tokenHash: InboundClassifier.tokenHash(token), reviewer: "reviewer@example.org",
                                               expiresAt: now.addingTimeInterval(86_400), messageID: "<req-\(i)@signoff.bench>")])
    _ = try await store.pause(c.lease, checkpoint: nil, requests: [request], mail: [], delivered: [], now: now)
}
let maildir = Maildir(root: dir.appendingPathComponent("Maildir"))
try maildir.create()
let quoted = (0..<30).map { "> line \($0) of the quoted request text, as most clients quote it back" }.joined(separator: "\r\n")
for (i, token) in tokens.enumerated() {
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
    try maildir.deliver(Array(raw.utf8))
}
// Copy the messages aside so Python reads exactly the same files.
let pyFolder = dir.appendingPathComponent("python-input")
try FileManager.default.copyItem(at: maildir.newDirectory, to: pyFolder)

// Timed, without the store: parse + classify + decide every file (tokens looked up in memory).
let memoryTokens = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($0.element, $0.offset) })
let memoryClassifier = InboundClassifier(
    config: InboundConfig(replyAddress: EmailAddress("approvals@signoff.bench"), strictAuthservID: nil),
    lookup: { token in
        guard let i = memoryTokens[token] else { return nil }
        return InboundTokenInfo(requestID: "r\(i)", reviewer: EmailAddress("reviewer@example.org"), expiresAt: nil, state: .open,
                                expected: .approval(rejectReasonRequired: true), issuedMessageIDs: ["req-\(i)@signoff.bench"])
    })
let files = try FileManager.default.contentsOfDirectory(atPath: pyFolder.path).sorted()
let classifyStart = Date()
var decided = 0
for _ in 0..<classifyRounds {
    for name in files {
        let bytes = Array(try Data(contentsOf: pyFolder.appendingPathComponent(name)))
        if try await memoryClassifier.classify(bytes, now: now).outcome == .applied { decided += 1 }
    }
}
let classifySeconds = Date().timeIntervalSince(classifyStart)

// Timed: one import pass.
let pass = ImportPass(store: store, maildir: maildir, inbox: nil,
                      config: InboundConfig(replyAddress: EmailAddress("approvals@signoff.bench"), strictAuthservID: nil),
                      interpreter: ApprovalInterpreter(), logger: logger, now: { now })
let start = Date()
let summary = try await pass.run()
let elapsed = Date().timeIntervalSince(start)
await store.close()

// Python: parse only.
let scriptURL = dir.appendingPathComponent("parse_only.py")
try pythonScript.write(to: scriptURL, atomically: true, encoding: .utf8)
let process = Process()
process.executableURL = URL(fileURLWithPath: python)
process.arguments = [scriptURL.path, pyFolder.path]
let pipe = Pipe()
process.standardOutput = pipe
try process.run()
let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
process.waitUntilExit()
let parts = out.split(separator: " ")
let pySeconds = parts.count >= 2 ? Double(parts[1]) ?? 0 : 0
let pyRate = pySeconds > 0 ? Double(messages) / pySeconds : 0
let rate = Double(summary.processed) / elapsed

emit([
    ("benchmark", "\"import\""),
    ("database", "\"\(store.backend.rawValue)\""),
    ("messages", "\(messages)"),
    ("applied", "\(summary.outcomes["applied"] ?? 0)"),
    ("errors", "\(summary.errors)"),
    ("seconds", String(format: "%.3f", elapsed)),
    ("messages_per_second", String(format: "%.1f", rate)),
    ("python_parse_only_seconds", String(format: "%.3f", pySeconds)),
    ("python_parse_only_messages_per_second", String(format: "%.1f", pyRate)),
    ("ratio_vs_python", String(format: "%.2f", pyRate > 0 ? rate / pyRate : 0)),
    ("parse_and_decide_only_messages_per_second", String(format: "%.1f", Double(decided) / classifySeconds)),
    ("parse_and_decide_ratio_vs_python", String(format: "%.2f", pyRate > 0 ? Double(decided) / classifySeconds / pyRate : 0)),
    ("target_ratio", "10"),
])
