// A bounded random-mutation fuzzer for the MIME reader, the reply extractor, the decision
// grammar, the automatic-mail detector and the inbox-file reader, seeded with the corpora.
//
//   swift run -c release MailFuzz [--seconds N] [--seed S] [--dump ITERATION]
//
// Deterministic for a seed: a crash at iteration K is reproduced with `--seed S --dump K`,
// which writes that input to ./crash-S-K.bin. Prints one JSON object.
import Foundation
import SignoffMail
import SignoffTestSupport

var seconds = 60.0
var seed: UInt64 = UInt64(Date().timeIntervalSince1970)
var dumpIteration: Int? = nil
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--seconds": seconds = Double(args.next() ?? "") ?? seconds
    case "--seed": seed = UInt64(args.next() ?? "") ?? seed
    case "--dump": dumpIteration = Int(args.next() ?? "")
    case "--profile":
        // Times each stage on one input file (to find slow paths).
        let input = Array((try? Data(contentsOf: URL(fileURLWithPath: args.next() ?? ""))) ?? Data())
        func time(_ label: String, _ body: () -> Void) { let t = Date(); body(); print(label, String(format: "%.1f ms", Date().timeIntervalSince(t) * 1000)) }
        var message: MIMEMessage? = nil
        var text: String? = nil
        var visible = ""
        time("parse") { message = try? MIMEMessage.parse(input) }
        time("textBody") { text = try? message?.textBody() }
        time("visibleText") { visible = ReplyExtractor.visibleText(text ?? "") }
        time("grammar(visible)") { _ = DecisionGrammar.parse(visible, expecting: .approval(rejectReasonRequired: true)) }
        time("grammar(text)") { _ = DecisionGrammar.parse(text ?? "", expecting: .approval(rejectReasonRequired: true)) }
        time("automatic") { _ = message.map { AutomaticMailDetector.classify($0) } }
        time("html") { for p in message?.root.allParts() ?? [] { _ = HTMLText.toText(String(decoding: p.decodedBody().prefix(100_000), as: UTF8.self)) } }
        exit(0)
    default: FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8)); exit(2)
    }
}

// Seeds: every corpus file (plain-text replies wrapped as a message), plus hand-made edge cases.
func packageRoot() -> URL {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        url = url.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}
let corpora = packageRoot().appendingPathComponent("../shared/corpora").standardizedFileURL
var seeds: [[UInt8]] = []
if let walker = FileManager.default.enumerator(at: corpora, includingPropertiesForKeys: nil) {
    for case let url as URL in walker where ["eml", "txt", "html"].contains(url.pathExtension) {
        guard let data = try? Data(contentsOf: url) else { continue }
        if url.pathExtension == "eml" { seeds.append(Array(data)) }
        else {
            let type = url.pathExtension == "html" ? "text/html" : "text/plain; format=flowed; delsp=yes"
            seeds.append(Array("From: r@example.org\nTo: approvals+tok@example.org\nContent-Type: \(type); charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n".utf8) + Array(data))
        }
    }
}
seeds.append(Array("From: a@b.c\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain; charset*0*=utf-8''%C3; charset*1=x\nContent-Transfer-Encoding: base64\n\nQVBQUk9WRQ==\n--x--\n".utf8))
seeds.append(Array(#"{"request": "r1", "token": "t", "decision": "value", "value": [1, {"a": "b"}], "responder": "a@b.c"}"#.utf8))
if seeds.isEmpty { FileHandle.standardError.write(Data("no seeds found under \(corpora.path)\n".utf8)); exit(1) }

let dictionary: [[UInt8]] = [
    "=?utf-8?B?", "=?iso-8859-1?Q?", "?=", "=\r\n", "=\n", "=C3=A9", "Content-Type: multipart/mixed; boundary=x\n\n--x\n",
    "\n--x\n", "\n--x--\n", "Content-Transfer-Encoding: base64\n", "Content-Transfer-Encoding: quoted-printable\n",
    "charset=koi8-r", "charset=utf-16", "charset=iso-2022-jp", "format=flowed; delsp=yes", "filename*0*=utf-8''%E2%82",
    "<blockquote>", "</blockquote>", "&#x1F44D;", "&#0;", "&amp", "<!--", "<style>", "<br>", "On Mon, X <a@b> wrote:\n",
    "-----Original Message-----\n", "From: x\nSent: y\n", "> ", "-- \n", "APPROVE", "REJECT: ", "VALUE: ", "DELEGATE: a@b.c",
    "\u{200B}", "ＡＰＰＲＯＶＥ：", "**", "Auto-Submitted: auto-replied\n", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\n",
    "message/rfc822", "\r", "\0", "\u{FEFF}", "(((((", "\"\\", "{\"a\":", "\"decision\"",
].map { Array($0.utf8) }

@MainActor func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var b = input
    let rounds = Int.random(in: 1...8, using: &rng)
    for _ in 0..<rounds {
        let pos = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
        switch Int.random(in: 0..<9, using: &rng) {
        case 0: if !b.isEmpty { b[pos] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng)) }
        case 1: b.insert(UInt8.random(in: 0...255, using: &rng), at: pos)
        case 2: if !b.isEmpty { b.removeSubrange(pos..<min(b.count, pos + Int.random(in: 1...64, using: &rng))) }
        case 3: b.insert(contentsOf: dictionary.randomElement(using: &rng)!, at: pos)
        case 4:
            let other = seeds.randomElement(using: &rng)!
            if !other.isEmpty {
                let s = Int.random(in: 0..<other.count, using: &rng)
                b.insert(contentsOf: other[s..<min(other.count, s + Int.random(in: 1...512, using: &rng))], at: pos)
            }
        case 5: if !b.isEmpty { b = Array(b[..<pos]) }
        case 6:
            if !b.isEmpty {
                let e = min(b.count, pos + Int.random(in: 1...128, using: &rng))
                let chunk = b[pos..<e]
                for _ in 0..<Int.random(in: 1...20, using: &rng) { b.insert(contentsOf: chunk, at: pos) }
            }
        case 7: if !b.isEmpty { b[pos] = [0x0A, 0x0D, 0x20, 0x3D, 0x3E, 0x2D, 0x3C, 0x3B, 0x22, 0x2A].randomElement(using: &rng)! }
        default:
            // nest multiparts deeply
            let depth = Int.random(in: 1...15, using: &rng)
            var nest: [UInt8] = []
            for d in 0..<depth { nest += Array("Content-Type: multipart/mixed; boundary=n\(d)\n\n--n\(d)\n".utf8) }
            b.insert(contentsOf: nest, at: pos)
        }
        if b.count > 2 * 1024 * 1024 { b = Array(b[..<(1024 * 1024)]) }
    }
    return b
}

let expectations: [ExpectedResponse] = [.approval(rejectReasonRequired: true), .value(.number), .value(.choice(["red", "blue"])), .value(.date), .value(.text)]

/// Runs every reader over one input; returns a checksum so the optimizer keeps the work.
@MainActor func exercise(_ input: [UInt8], _ expected: ExpectedResponse) -> Int {
    var sum = 0
    if let m = try? MIMEMessage.parse(input) {
        sum &+= m.root.allParts().count
        if let v = AutomaticMailDetector.classify(m) { sum &+= "\(v)".count }
        sum &+= Authenticity.token(in: m.headers, replyAddress: EmailAddress("approvals@example.org"))?.count ?? 0
        if let text = try? m.textBody() {
            let visible = ReplyExtractor.visibleText(text)
            sum &+= "\(DecisionGrammar.parse(visible, expecting: expected))".count
            sum &+= "\(DecisionGrammar.parse(text, expecting: expected))".count
        }
        for p in m.root.allParts().prefix(5) { sum &+= HTMLText.toText(String(decoding: p.decodedBody().prefix(100_000), as: UTF8.self)).count }
    }
    if let f = try? InboxResponseFile.parse(input) { sum &+= f.request.count }
    let asText = String(decoding: input.prefix(200_000), as: UTF8.self)
    sum &+= EncodedWords.decode(String(asText.prefix(2000))).count
    sum &+= MIMEHeaderValue.parse(String(asText.prefix(2000))).parameters.count
    sum &+= EmailAddress.parseList(String(asText.prefix(2000))).count
    return sum
}

var rng = SplitMix64(seed: seed)
let start = Date()
var executions = 0
var checksum = 0
var slowest = 0.0
var slowestIteration = -1
while true {
    let base = seeds.randomElement(using: &rng)!
    let input = mutate(base, &rng)
    let expected = expectations.randomElement(using: &rng)!
    if let dump = dumpIteration, dump == executions {
        let url = URL(fileURLWithPath: "crash-\(seed)-\(dump).bin")
        try Data(input).write(to: url)
        print("{\"dumped\": \"\(url.path)\"}")
        exit(0)
    }
    let t0 = Date()
    checksum &+= exercise(input, expected)
    let took = Date().timeIntervalSince(t0)
    if took > slowest { slowest = took; slowestIteration = executions }
    executions += 1
    if executions % 1000 == 0, Date().timeIntervalSince(start) >= seconds { break }
}
let elapsed = Date().timeIntervalSince(start)
print("""
{"target": "MailFuzz", "seed": \(seed), "seeds": \(seeds.count), "executions": \(executions), "seconds": \(String(format: "%.1f", elapsed)), \
"executions_per_second": \(Int(Double(executions) / elapsed)), "slowest_ms": \(String(format: "%.1f", slowest * 1000)), \
"slowest_iteration": \(slowestIteration), "crashes": 0, "checksum": \(checksum)}
""")
