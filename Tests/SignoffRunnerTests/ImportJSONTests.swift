import Foundation
import SignoffEngine
import SignoffLLM
import SignoffMail
@testable import SignoffStore
import SignoffTestSupport
import Testing
@testable import SignoffRunner

/// The import's hand-written JSON reader and writer give exactly the answers of JSONDecoder and
/// JSONEncoder: on payloads the runner writes, on seeded random ones, and on malformed ones.
@Suite struct ImportJSONTests {
    // MARK: Oracles

    /// The view through JSONDecoder (what the import read before the fast reader).
    static func oracleView(_ data: Data) -> ImportedRequest? {
        (try? HumanRequest.decode(data)).map(ImportedRequest.init)
    }

    static func oraclePolicy(_ data: Data) -> RequestMail.Policy? {
        try? JSONDecoder().decode(RequestMail.Policy.self, from: data)
    }

    static func oracleJSON(_ response: HumanResponse) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(response)) ?? Data("{}".utf8)
    }

    /// Field by field, doubles by bit pattern.
    static func same(_ a: RequestMail.Policy?, _ b: RequestMail.Policy?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        func bits(_ d: Double?) -> UInt64? { d?.bitPattern }
        return a.onTimeout == b.onTimeout && bits(a.remindEvery) == bits(b.remindEvery) && a.reminders == b.reminders
            && a.escalateTo == b.escalateTo && a.delegates == b.delegates && a.forbid == b.forbid
            && bits(a.expiresAfter) == bits(b.expiresAfter)
            && a.reminderSchedule?.map(\.bitPattern) == b.reminderSchedule?.map(\.bitPattern)
    }

    /// The stored forms of a payload: the runner's (the engine's JSON value, sorted keys, slashes
    /// unescaped), plain JSONEncoder (slashes escaped), and pretty-printed (white space).
    static func encodings<T: Encodable>(_ value: T) throws -> [Data] {
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted]
        return [try JSONValue.encoding(value).data(), try JSONEncoder().encode(value), try pretty.encode(value)]
    }

    // MARK: Generators

    /// Seeded (SplitMix64), so a failure reproduces.
    typealias Seeded = SplitMix64

    static let pieces: [String] = ["a", "Z", "7", " ", "/", "\\", "\"", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}", "\u{C}",
                                   "\u{1F}", "\u{7F}", "é", "ß", "€", "😀", "\u{2028}", "e\u{301}", "日本", "<", ">", "&",
                                   "'", "{", "}", "[", "]", ":", ",", "\u{FEFF}", "\u{10FFFF}", "null", "true", "1e5"]

    static func text(_ g: inout Seeded, max: Int = 12) -> String {
        (0..<Int.random(in: 0...max, using: &g)).map { _ in
            Bool.random(using: &g) ? String(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &g))) : pieces.randomElement(using: &g)!
        }.joined()
    }

    static func maybe<T>(_ g: inout Seeded, _ make: (inout Seeded) -> T) -> T? {
        Bool.random(using: &g) ? make(&g) : nil
    }

    static func number(_ g: inout Seeded) -> Double {
        switch Int.random(in: 0..<8, using: &g) {
        case 0: return Double(Int.random(in: -1000...1000, using: &g))
        case 1: return Double.random(in: -1e6...1e6, using: &g)
        case 2: return 1_795_353_930 + Double.random(in: 0..<1, using: &g)
        case 3: return Double(Int64.random(in: -(1 << 53)...(1 << 53), using: &g))
        case 4: return Double.random(in: 1e-8...1e-3, using: &g)
        case 5: return Double(sign: .plus, exponent: Int.random(in: -1000...1000, using: &g), significand: Double.random(in: 1..<2, using: &g))
        case 6:
            let d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &g))
            return d.isFinite ? d : 0.5
        default: return [0, -0.0, 1e15, 1e15 - 1, 1e16, 123_456_789_012_345.6, 0.1, 1e21, Double.leastNonzeroMagnitude, 2.2250738585072014e-308].randomElement(using: &g)!
        }
    }

    static func jobValue(_ g: inout Seeded, depth: Int = 0, asciiKeys: Bool = true) -> JobValue {
        switch Int.random(in: 0..<(depth > 2 ? 4 : 6), using: &g) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &g))
        case 2: return .number(number(&g))
        case 3: return .string(text(&g))
        case 4: return .array((0..<Int.random(in: 0...3, using: &g)).map { _ in jobValue(&g, depth: depth + 1, asciiKeys: asciiKeys) })
        default:
            var o: [String: JobValue] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &g) {
                let key = asciiKeys ? String((0..<Int.random(in: 0...6, using: &g)).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x00...0x7F, using: &g))) })
                                    : text(&g, max: 4)
                o[key] = jobValue(&g, depth: depth + 1, asciiKeys: asciiKeys)
            }
            return .object(o)
        }
    }

    static func stepResult(_ g: inout Seeded) -> StepResult {
        var r = StepResult(kind: ["shell", "llm", "approval", "ask", "executor"].randomElement(using: &g)!)
        r.stdout = maybe(&g) { text(&$0, max: 40) }
        r.stderr = maybe(&g) { text(&$0) }
        r.exitCode = maybe(&g) { Int.random(in: -255...255, using: &$0) }
        r.json = maybe(&g) { jobValue(&$0) }
        r.text = maybe(&g) { text(&$0, max: 60) }
        r.model = maybe(&g) { _ in "gpt-4o-mini" }
        r.decision = maybe(&g) { _ in "approve" }
        r.reason = maybe(&g) { text(&$0) }
        r.by = maybe(&g) { _ in "bob@example.org" }
        r.value = maybe(&g) { jobValue(&$0) }
        r.promptTokens = maybe(&g) { Int.random(in: 0...100_000, using: &$0) }
        r.attempts = maybe(&g) { Int.random(in: 1...5, using: &$0) }
        return r
    }

    static func flowState(_ g: inout Seeded) -> FlowState {
        let run = RunInfo(id: UUID().uuidString, job: "job-\(text(&g, max: 3))", attempt: Int.random(in: 1...4, using: &g),
                          requestedBy: maybe(&g) { ["Alice <alice@example.org>", "ops/bot@example.org", text(&$0)].randomElement(using: &$0)! },
                          startedAt: Date(timeIntervalSince1970: Double.random(in: 1e9...2e9, using: &g)))
        var input: [String: JobValue] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &g) { input[text(&g, max: 5)] = jobValue(&g, asciiKeys: Bool.random(using: &g)) }
        var results: [String: StepResult] = [:]
        for _ in 0..<Int.random(in: 0...3, using: &g) { results[text(&g, max: 5)] = stepResult(&g) }
        var state = FlowState(run: run, input: input, results: results, feedback: maybe(&g) { text(&$0) },
                              rounds: Bool.random(using: &g) ? ["review": Int.random(in: 1...3, using: &g)] : [:],
                              rejectedBy: maybe(&g) { _ in "review" })
        if Bool.random(using: &g) {
            state.llmRounds = ["draft": [LLMStepPrompt.Round(draft: text(&g, max: 50), feedback: [text(&g), text(&g)])]]
        }
        return state
    }

    static func humanRequest(_ g: inout Seeded) -> HumanRequest {
        let kind: HumanRequest.Kind = Bool.random(using: &g) ? .approval : .value
        var human = HumanRequest(kind: kind, stepID: text(&g, max: 6), title: text(&g, max: 20), body: text(&g, max: 80),
                                 valueType: kind == .value ? maybe(&g) { AskStep.ValueType.allCases.randomElement(using: &$0)! } : nil,
                                 choices: (0..<Int.random(in: 0...3, using: &g)).map { _ in text(&g, max: 6) },
                                 reviewers: (0..<Int.random(in: 0...2, using: &g)).map { _ in text(&g, max: 10) },
                                 requireReason: Bool.random(using: &g), round: Int.random(in: 1...9, using: &g),
                                 template: maybe(&g) { text(&$0, max: 8) }, state: maybe(&g) { flowState(&$0) })
        if Int.random(in: 0..<5, using: &g) == 0 {
            let checkpoint = Data((0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) })
            human.inner = InnerRequest(requestID: UUID().uuidString, responseTypeName: "signoff.human-response", checkpoint: checkpoint)
        }
        return human
    }

    static func policy(_ g: inout Seeded) -> RequestMail.Policy {
        RequestMail.Policy(onTimeout: ["reject", "approve", "escalate", text(&g)].randomElement(using: &g)!,
                           remindEvery: maybe(&g) { number(&$0) }, reminders: Int.random(in: -2...20, using: &g),
                           escalateTo: (0..<Int.random(in: 0...2, using: &g)).map { _ in text(&g, max: 10) },
                           delegates: (0..<Int.random(in: 0...2, using: &g)).map { _ in text(&g, max: 10) },
                           forbid: Bool.random(using: &g) ? ["requester"] : [],
                           expiresAfter: maybe(&g) { number(&$0) },
                           reminderSchedule: maybe(&g) { g in (0..<Int.random(in: 0...4, using: &g)).map { _ in number(&g) } })
    }

    /// A realistic approval payload as the runner stores it: run info, job input, an earlier llm
    /// step's draft and a shell step's output.
    static func realisticRequest(requestedBy: String? = "Dana Smith <dana@example.org>") -> HumanRequest {
        let run = RunInfo(id: "0190f7a2-5b7e-7c3d-9a11-3f5e2d1c0b9a", job: "quarterly-report", attempt: 2,
                          requestedBy: requestedBy, startedAt: Date(timeIntervalSince1970: 1_795_353_930.8979144))
        var draft = StepResult(kind: "llm")
        draft.text = "Résumé du trimestre — revenus +12 % « hors change ».\nSee https://intranet.example.org/q3/report?id=7&x=\"y\"\n\tTable:\u{1}\\ done 😀"
        draft.model = "gpt-4o-mini"
        draft.promptTokens = 1834
        draft.completionTokens = 412
        draft.attempts = 1
        draft.json = .object(["summary": .string("ok"), "figures": .array([.number(12.5), .number(1e21), .number(-3), .null, .bool(true)])])
        var fetch = StepResult(kind: "shell")
        fetch.stdout = String(repeating: "2026-11-21,EUR,1234.56,\"Zürich\"\n", count: 30)
        fetch.stderr = ""
        fetch.exitCode = 0
        var state = FlowState(run: run, input: ["quarter": .string("Q3/2026"), "regions": .array([.string("EMEA"), .string("APAC")]),
                                                "threshold": .number(0.05), "notify": .bool(true), "meta": .object(["owner": .string("finance/ops")])],
                              results: ["draft": draft, "fetch": fetch], feedback: "Please shorten the summary.", rounds: ["review": 1])
        state.llmRounds = ["draft": [LLMStepPrompt.Round(draft: "First draft…", feedback: ["Too long", ""])]]
        return HumanRequest(kind: .approval, stepID: "review", title: "Q3 report: \"final\" draft / please review",
                            body: "Dear reviewer,\n\n" + (draft.text ?? ""), reviewers: ["cfo@example.org", "Eve <eve@example.org>"],
                            requireReason: true, round: 2, template: "report", state: state)
    }

    // MARK: Request payloads

    @Test func realRunnerPayloadsReadTheSameWithoutJSONDecoder() throws {
        var ask = Self.realisticRequest(requestedBy: nil)
        ask.kind = .value
        ask.valueType = .choice
        ask.choices = ["Go", "No go", "Ask \"legal\""]
        ask.requireReason = false
        var inner = Self.realisticRequest()
        inner.inner = InnerRequest(requestID: "inner-1", responseTypeName: "signoff.human-response",
                                   checkpoint: Data((0..<300).map { UInt8($0 % 256) }))
        for human in [Self.realisticRequest(), ask, inner] {
            for data in try Self.encodings(human) {
                let fast = try #require(ImportJSON.request(data), "the reader must handle a payload the runner writes")
                #expect(fast == ImportedRequest(human))
                #expect(fast == Self.oracleView(data))
                #expect(fast.expectedResponse == human.expectedResponse)
                #expect(fast.mailResponseKind == human.mailResponseKind)
            }
        }
        #expect(ImportedRequest(Self.realisticRequest()).requestedBy == "Dana Smith <dana@example.org>")
    }

    @Test func seededRandomPayloadsReadTheSameAsJSONDecoder() throws {
        var g = Seeded(seed: 0x5EED_0001)
        var checked = 0
        for _ in 0..<3000 {
            let human = Self.humanRequest(&g)
            for data in try Self.encodings(human) {
                let oracle = try #require(Self.oracleView(data))
                #expect(ImportJSON.request(data) == oracle, "\(String(decoding: data, as: UTF8.self))")
                checked += 1
            }
        }
        #expect(checked == 9000)
    }

    @Test func viewAnswersTheInterpretersQuestionsLikeTheFullRequest() {
        var g = Seeded(seed: 0x5EED_0002)
        for _ in 0..<500 {
            let human = Self.humanRequest(&g)
            let view = ImportedRequest(human)
            #expect(view.expectedResponse == human.expectedResponse)
            #expect(view.mailResponseKind == human.mailResponseKind)
            for decision in [Decision.approve(comment: "fine / ok"), .reject(reason: "no"), .value(.number(12.5)), .value(.text("x"))] {
                #expect(view.response(for: decision, by: "a@b", via: "<m@x>") == human.response(for: decision, by: "a@b", via: "<m@x>"))
            }
        }
    }

    /// Mutations of valid payloads: the combined decode equals JSONDecoder's answer (nil where it
    /// gives nil), and whatever the fast reader accepts, JSONDecoder accepts with the same view.
    @Test func malformedAndMutatedPayloadsEndWhereJSONDecoderEnds() throws {
        var g = Seeded(seed: 0x5EED_0003)
        let structural = Array("{}[],:\"\\ 0123456789-+.eEntfrua/\u{7F}".utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]
        var handled = 0, total = 0
        func check(_ data: Data) {
            let oracle = Self.oracleView(data)
            #expect(ImportedRequest.decode(data) == oracle, "\(Array(data))")
            if let fast = ImportJSON.request(data) {
                handled += 1
                #expect(fast == oracle, "\(String(decoding: data, as: UTF8.self))")
            }
            total += 1
        }
        for n in 0..<2500 {
            let human = n % 10 == 0 ? Self.realisticRequest() : Self.humanRequest(&g)
            let data = try Self.encodings(human)[Int.random(in: 0..<2, using: &g)]
            var bytes = [UInt8](data)
            let at = Int.random(in: 0..<bytes.count, using: &g)
            switch Int.random(in: 0..<5, using: &g) {
            case 0: bytes.removeSubrange(at...)
            case 1: bytes.remove(at: at)
            case 2: bytes.insert(structural.randomElement(using: &g)!, at: at)
            case 3: bytes[at] = structural.randomElement(using: &g)!
            default: bytes.insert(contentsOf: Array(" \n\t\r".utf8).shuffled(using: &g).prefix(2), at: at)
            }
            check(Data(bytes))
        }
        // Targeted edits: duplicate, missing and mistyped fields, escaped names, numbers JSONDecoder
        // reads differently, deep nesting, trailing garbage.
        let base = String(decoding: try JSONValue.encoding(Self.realisticRequest()).data(), as: UTF8.self)
        let edits: [(String, String)] = [
            (#"{"body""#, #"{"title":"other","body""#), (#"{"body""#, #"{"kind":"value","body""#),
            (#""requestedBy":"#, #""requestedBy":"x","requestedBy":"#), (#""attempt":2"#, #""attempt":2,"attempt":"2""#),
            (#""requireReason":true"#, #""requireReason":"true""#), (#""requireReason":true"#, #""requireReason":1"#),
            (#""requireReason":true"#, #""requireReason":null"#), (#""requireReason":true,"#, ""),
            (#""round":2"#, #""round":2.0"#), (#""round":2"#, #""round":2e0"#), (#""round":2"#, #""round":99999999999999999999"#),
            (#""round":2"#, #""round":-0"#), (#""round":2"#, #""round":02"#), (#""kind":"approval""#, #""kind":"Approval""#),
            (#""kind":"approval""#, #""kind":"appro\u0076al""#), (#""title""#, #""ti\u0074le""#), (#""title""#, #""Title""#),
            (#""attempt":2"#, #""attempt":2.5"#), (#""exitCode":0"#, #""exitCode":"0""#), (#""exitCode":0"#, #""exitCode":null"#),
            (#""threshold":0.05"#, #""threshold":1e400"#), (#""threshold":0.05"#, #""threshold":1e-400"#),
            (#""threshold":0.05"#, #""threshold":-0.0e5"#), (#""threshold":0.05"#, #""threshold":1E+2"#),
            (#""quarter":"Q3/2026""#, #""quarter":"\ud800""#), (#""quarter":"Q3/2026""#, #""quarter":"\ud83d\ude00\u00e9\/""#),
            (#""quarter":"Q3/2026""#, #""quarter":"\x""#), (#""startedAt":"#, #""unknown":[1,{"a":[]}],"startedAt":"#),
            (#""startedAt":"#, #""unknown":[1,],"startedAt":"#), (#""llmRounds":"#, #""llmRoundz":"#),
            (#""rounds":{"review":1}"#, #""rounds":{"review":1,"review":"x"}"#), (#""rounds":{"review":1}"#, #""rounds":{"review":1.5}"#),
            (#""feedback":["Too long",""]"#, #""feedback":"Too long""#), (#""state":{"#, #""state":null,"x":{"#),
            (#""state":{"#, #""inner":null,"state":{"#), (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"QQ"},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"QR=="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"QQ=="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"Q\/=="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","checkpoint":"QQ=="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"Q==="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"===="},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"QQ=A"},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":""},"state":{"#),
            (#""state":{"#, #""inner":{"requestID":"r","responseTypeName":"t","checkpoint":"QUJD"},"state":{"#),
            (#""valueType":null,"#, ""), (#""state":{"#, #""valueType":"choice","state":{"#), (#""state":{"#, #""valueType":"colour","state":{"#),
        ]
        var applied = 0
        for (find, replace) in edits {
            guard let range = base.range(of: find) else { continue }
            applied += 1
            check(Data(base.replacingCharacters(in: range, with: replace).utf8))
        }
        #expect(applied >= edits.count - 2)
        for depth in [10, 63, 64, 65, 300, 511, 512, 600] {
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            check(Data(base.replacingOccurrences(of: #"{"body""#, with: #"{"deep":\#(nested),"body""#).utf8))
        }
        for wrap in [("\u{FEFF}", ""), ("", " x"), ("", "\u{0}"), ("  \n", "\n\t "), ("[", "]"), ("", ","), ("", "}")] {
            check(Data((wrap.0 + base + wrap.1).utf8))
        }
        // Numbers in the flow state JSONDecoder refuses (1e400, -0.0e5 …) make the whole payload nil.
        for n in 0..<1500 {
            check(Data(base.replacingOccurrences(of: #""threshold":0.05"#, with: #""threshold":\#(Self.numberText(&g, n))"#).utf8))
        }
        check(Data())
        check(Data("null".utf8))
        check(Data([0xC3, 0x28]))
        // The test would be empty if the reader gave up on everything.
        #expect(handled > 0 && handled < total)
    }

    // MARK: Policies

    @Test func seededRandomPoliciesReadBitIdenticalToJSONDecoder() throws {
        var g = Seeded(seed: 0x5EED_0004)
        for _ in 0..<4000 {
            let policy = Self.policy(&g)
            for data in [try JSONEncoder.sorted.encode(policy), try JSONEncoder().encode(policy)] {
                let fast = try #require(ImportJSON.policy(data), "\(String(decoding: data, as: UTF8.self))")
                #expect(Self.same(fast, Self.oraclePolicy(data)), "\(String(decoding: data, as: UTF8.self))")
            }
        }
    }

    /// Number texts JSONEncoder never writes (long mantissas, exponents, halfway cases) parse to the
    /// same bits as JSONDecoder's, or are left to it.
    /// A JSON number text JSONEncoder would not write: long mantissas, exponents up to ±330, zero
    /// mantissas, and known hard cases.
    static func numberText(_ g: inout Seeded, _ n: Int) -> String {
        if n % 50 == 0 {
            return ["9007199254740993", "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623159e308",
                    "4.9e-324", "-0.0e5", "-0", "0.30000000000000004", "1795353930.8979144", "1e23"][n / 50 % 10]
        }
        let digits = (0..<Int.random(in: 1...40, using: &g)).map { _ in String(Int.random(in: 0...9, using: &g)) }.joined()
        let zeros = n % 7 == 0  // zero mantissas, with and without sign and exponent
        var token = (Bool.random(using: &g) ? "-" : "") + (digits.first == "0" || zeros ? "0" : digits)
        if Bool.random(using: &g) {
            token += "." + (0..<Int.random(in: 1...30, using: &g)).map { _ in zeros ? "0" : String(Int.random(in: 0...9, using: &g)) }.joined()
        }
        if Bool.random(using: &g) {
            token += ["e", "E"].randomElement(using: &g)! + ["", "+", "-"].randomElement(using: &g)! + String(Int.random(in: 0...330, using: &g))
        }
        return token
    }

    @Test func policyNumbersWrittenByHandParseToJSONDecodersBits() {
        var g = Seeded(seed: 0x5EED_0005)
        var handled = 0
        for n in 0..<4000 {
            let token = Self.numberText(&g, n)
            let json = #"{"delegates":[],"escalateTo":[],"forbid":[],"onTimeout":"reject","reminders":1,"remindEvery":\#(token),"reminderSchedule":[\#(token),1]}"#
            let data = Data(json.utf8)
            let oracle = Self.oraclePolicy(data)
            #expect(Self.same(RequestMail.Policy.of(Self.record(policy: data)), oracle), "\(token)")
            if let fast = ImportJSON.policy(data) {
                handled += 1
                #expect(Self.same(fast, oracle), "\(token)")
            }
        }
        #expect(handled > 2000)
    }

    @Test func malformedPoliciesEndWhereJSONDecoderEnds() throws {
        var g = Seeded(seed: 0x5EED_0006)
        let structural = Array("{}[],:\"\\ 0123456789-+.eEnul".utf8) + [0x00, 0xFF]
        for _ in 0..<3000 {
            var bytes = [UInt8](try JSONEncoder.sorted.encode(Self.policy(&g)))
            let at = Int.random(in: 0..<bytes.count, using: &g)
            switch Int.random(in: 0..<3, using: &g) {
            case 0: bytes.removeSubrange(at...)
            case 1: bytes.remove(at: at)
            default: bytes[at] = structural.randomElement(using: &g)!
            }
            let data = Data(bytes)
            let oracle = Self.oraclePolicy(data)
            #expect(Self.same(RequestMail.Policy.of(Self.record(policy: data)), oracle), "\(String(decoding: data, as: UTF8.self))")
            if let fast = ImportJSON.policy(data) { #expect(Self.same(fast, oracle)) }
        }
        let base = #"{"delegates":[],"escalateTo":["a@b"],"forbid":["requester"],"onTimeout":"reject","reminders":2,"remindEvery":86400}"#
        for (find, replace) in [(#""reminders":2"#, #""reminders":2,"reminders":3"#), (#""reminders":2"#, #""reminders":"2""#),
                                (#""reminders":2"#, #""reminders":2.0"#), (#""remindEvery":86400"#, #""remindEvery":null"#),
                                (#""remindEvery":86400"#, #""remindEvery":"86400""#), (#""forbid":["requester"]"#, #""forbid":[1]"#),
                                (#""forbid":["requester"]"#, #""forbid":null"#), (#""onTimeout":"reject","#, ""),
                                (#""remindEvery":86400"#, #""remindEvery":86400,"reminderSchedule":[1e400]"#),
                                (#""remindEvery":86400"#, #""remindEvery":86400,"reminderSchedule":null"#),
                                (#""remindEvery":86400"#, #""remindEvery":86400,"other":{"x":[true,null]}"#)] {
            let data = Data(base.replacingOccurrences(of: find, with: replace).utf8)
            #expect(Self.same(RequestMail.Policy.of(Self.record(policy: data)), Self.oraclePolicy(data)), "\(replace)")
        }
        #expect(ImportJSON.policy(Data(base.utf8)) != nil)
    }

    static func record(policy: Data) -> RequestRecord {
        RequestRecord(id: "r", runID: "run", executorID: "review", stepID: "review", requestType: HumanRequest.typeName,
                      requestData: Data(), responseType: HumanResponse.typeName, status: .pending, reviewers: [],
                      quorum: .any, rejectOn: .any, remindersSent: 0, policy: policy, createdAt: Date())
    }

    // MARK: Responses

    @Test func responseBytesAreJSONEncodersBytes() {
        var g = Seeded(seed: 0x5EED_0007)
        var written = 0
        for n in 0..<5000 {
            let response = HumanResponse(decision: ["approve", "reject", "value", Self.text(&g)].randomElement(using: &g)!,
                                         reason: Self.maybe(&g) { Self.text(&$0, max: 40) },
                                         value: Self.maybe(&g) { Self.jobValue(&$0, asciiKeys: n % 5 != 0) },
                                         by: Self.maybe(&g) { _ in "Reviewer <r/1@example.org>" }, via: Self.maybe(&g) { Self.text(&$0) })
            #expect(response.json == Self.oracleJSON(response), "\(response)")
            if ImportJSON.encode(response) != nil { written += 1 }
        }
        #expect(written > 4000)
        // Every character below 0x80 and a few beyond, one by one.
        for scalar in (0..<0x80).compactMap(Unicode.Scalar.init) + ["é", "\u{2028}", "😀", "\u{FEFF}"] {
            let response = HumanResponse(decision: "reject", reason: "[\(scalar)]", by: "x", via: "y")
            #expect(ImportJSON.encode(response) == Self.oracleJSON(response), "U+\(String(scalar.value, radix: 16))")
        }
        for value in [Double.nan, .infinity, -.infinity, 1e15, -1e15, 1e15 - 1, 9.999999999999998e14, 1e16, -0.0, Double.leastNonzeroMagnitude, 1e-7, 0.1] {
            let response = HumanResponse(decision: "value", value: .array([.number(value)]))
            #expect(response.json == Self.oracleJSON(response), "\(value)")
            #expect(ImportJSON.encode(response) == Self.oracleJSON(response), "\(value)")
        }
    }
}
