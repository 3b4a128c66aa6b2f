import Foundation
import SignoffMail

/// What the import reads of a request payload (`HumanRequest`): the reply grammar, the notice's
/// title, body and choices, and who enqueued the run (for `forbid: [requester]`). Decoded by
/// ``ImportJSON`` without building the rest of the payload (the flow state, an inner checkpoint).
struct ImportedRequest: Sendable, Hashable {
    var kind: HumanRequest.Kind
    var valueType: AskStep.ValueType?
    var title: String
    var body: String
    var choices: [String]
    var requireReason: Bool
    /// `state.run.requestedBy` (nil without a state or a requester).
    var requestedBy: String?

    init(kind: HumanRequest.Kind, valueType: AskStep.ValueType?, title: String, body: String, choices: [String],
         requireReason: Bool, requestedBy: String?) {
        self.kind = kind
        self.valueType = valueType
        self.title = title
        self.body = body
        self.choices = choices
        self.requireReason = requireReason
        self.requestedBy = requestedBy
    }

    /// The view of a fully decoded request.
    init(_ human: HumanRequest) {
        self.init(kind: human.kind, valueType: human.valueType, title: human.title, body: human.body, choices: human.choices,
                  requireReason: human.requireReason, requestedBy: human.state?.run.requestedBy)
    }

    /// The view of stored request bytes: the fast reader, or `HumanRequest.decode` when the reader
    /// meets anything it does not fully handle. Nil exactly where `HumanRequest.decode` throws.
    static func decode(_ data: Data) -> ImportedRequest? {
        if let fast = ImportJSON.request(data) { return fast }
        return (try? HumanRequest.decode(data)).map(ImportedRequest.init)
    }

    /// A request with these fields and nothing else: the grammar and mail kind are `HumanRequest`'s own.
    private var slim: HumanRequest {
        HumanRequest(kind: kind, stepID: "", title: title, body: body, valueType: valueType, choices: choices,
                     reviewers: [], requireReason: requireReason, state: nil)
    }

    /// The reply grammar this request accepts (``HumanRequest/expectedResponse``).
    var expectedResponse: ExpectedResponse { slim.expectedResponse }

    /// How the mail shows the expected answer (``HumanRequest/mailResponseKind``).
    var mailResponseKind: MailResponseKind { slim.mailResponseKind }

    /// The response bytes for a decision (``HumanRequest/response(for:by:via:)``).
    func response(for decision: Decision, by: String?, via: String?) -> Data? {
        slim.response(for: decision, by: by, via: via)
    }
}

/// A hand-written JSON reader and writer for the import's hot path: request payloads
/// (``ImportedRequest``), request policies (``RequestMail/Policy``) and response bytes
/// (``HumanResponse/json``).
///
/// The readers are conservative: they return nil ("not handled") on anything unusual — malformed
/// JSON, a duplicate field, an escaped field name, a type or value the Swift type would refuse, a
/// number outside what `JSONDecoder` takes, deep nesting — and their callers then decode with
/// `JSONDecoder`, so every answer is the one `JSONDecoder` gives. Whatever the payload's Swift
/// type decodes (the flow state, an inner request) is validated against that type, without
/// building values, so a payload `JSONDecoder` refuses is never read here.
enum ImportJSON {
    /// The view of a `HumanRequest` payload, or nil when the reader does not handle these bytes.
    static func request(_ data: Data) -> ImportedRequest? {
        data.withUnsafeBytes { raw -> ImportedRequest? in
            guard let base = raw.baseAddress, raw.count > 0 else { return nil }
            var reader = JSONReader(base.assumingMemoryBound(to: UInt8.self), raw.count)
            do throws(JSONReader.Bail) {
                let view = try reader.humanRequest()
                try reader.finish()
                return view
            } catch {
                return nil
            }
        }
    }

    /// A request policy, or nil when the reader does not handle these bytes.
    static func policy(_ data: Data) -> RequestMail.Policy? {
        data.withUnsafeBytes { raw -> RequestMail.Policy? in
            guard let base = raw.baseAddress, raw.count > 0 else { return nil }
            var reader = JSONReader(base.assumingMemoryBound(to: UInt8.self), raw.count)
            do throws(JSONReader.Bail) {
                let policy = try reader.policy()
                try reader.finish()
                return policy
            } catch {
                return nil
            }
        }
    }

    /// The bytes `JSONEncoder` with `.sortedKeys` writes for `response`, or nil for a value this
    /// writer leaves to `JSONEncoder` (an object with a non-ASCII key, whose order is the encoder's).
    static func encode(_ response: HumanResponse) -> Data? {
        var out: [UInt8] = []
        out.reserveCapacity(96 + (response.reason?.utf8.count ?? 0))
        var writer = JSONWriter(out: out)
        switch writer.response(response) {
        case .written: return Data(writer.out)
        case .notFinite: return Data("{}".utf8)  // JSONEncoder throws on NaN and infinity; `json` then writes {}
        case .notHandled: return nil
        }
    }
}

// MARK: - Reader

/// A cursor over JSON bytes. Every read either succeeds with what `JSONDecoder` would decode or
/// throws `Bail`, after which the caller decodes with `JSONDecoder`.
struct JSONReader {
    struct Bail: Error {}

    private let p: UnsafePointer<UInt8>
    private let end: Int
    private var i = 0
    private var depth = 0
    /// Far below `JSONDecoder`'s own limit (512), and bounds this reader's recursion.
    private static let maxDepth = 64

    init(_ p: UnsafePointer<UInt8>, _ count: Int) {
        self.p = p
        self.end = count
    }

    // MARK: Bytes

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    private mutating func skipSpace() {
        while i < end {
            let b = p[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { return }
        }
    }

    /// The next byte after white space, not consumed.
    private mutating func peek() throws(Bail) -> UInt8 {
        skipSpace()
        guard i < end else { throw Bail() }
        return p[i]
    }

    private mutating func expect(_ byte: UInt8) throws(Bail) {
        guard try peek() == byte else { throw Bail() }
        i += 1
    }

    /// Only white space may follow the top-level value.
    mutating func finish() throws(Bail) {
        skipSpace()
        guard i == end else { throw Bail() }
    }

    private mutating func literal(_ text: StaticString) throws(Bail) {
        let n = text.utf8CodeUnitCount
        guard end - i >= n, memcmp(p + i, text.utf8Start, n) == 0 else { throw Bail() }
        i += n
    }

    /// Consumes `null` if it comes next.
    private mutating func null() throws(Bail) -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    // MARK: Strings

    /// A string token's content (between the quotes) and whether it holds escapes.
    private struct Token {
        var start: Int
        var count: Int
        var escaped: Bool
    }

    /// Scans a string: escapes checked (a lone surrogate is left to JSONDecoder), UTF-8 validated,
    /// no raw control characters.
    private mutating func stringToken() throws(Bail) -> Token {
        try expect(Self.quote)
        let start = i
        var escaped = false
        while i < end {
            let b = p[i]
            if b == Self.quote {
                let token = Token(start: start, count: i - start, escaped: escaped)
                i += 1
                return token
            }
            if b == Self.backslash {
                escaped = true
                i += 1
                guard i < end else { throw Bail() }
                switch p[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "u"):
                    i += 1
                    let unit = try hex4()
                    if unit >= 0xD800 && unit <= 0xDBFF {
                        guard end - i >= 2, p[i] == Self.backslash, p[i + 1] == UInt8(ascii: "u") else { throw Bail() }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw Bail() }
                    } else if unit >= 0xDC00 && unit <= 0xDFFF {
                        throw Bail()
                    }
                default: throw Bail()
                }
                continue
            }
            if b < 0x20 { throw Bail() }
            if b < 0x80 { i += 1; continue }
            try utf8Sequence(b)
        }
        throw Bail()
    }

    /// Four hex digits of a `\u` escape.
    private mutating func hex4() throws(Bail) -> UInt32 {
        guard end - i >= 4 else { throw Bail() }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i + k]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw Bail()
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }

    /// One well-formed multi-byte UTF-8 sequence starting with `lead` (no overlong forms, no
    /// surrogates, nothing above U+10FFFF).
    private mutating func utf8Sequence(_ lead: UInt8) throws(Bail) {
        let count: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; high = 0x9F
        case 0xF0: count = 4; low = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; high = 0x8F
        default: throw Bail()
        }
        guard end - i >= count else { throw Bail() }
        let second = p[i + 1]
        guard second >= low && second <= high else { throw Bail() }
        for k in 2..<count where p[i + k] & 0xC0 != 0x80 { throw Bail() }
        i += count
    }

    /// A string's value.
    private mutating func string() throws(Bail) -> String {
        let token = try stringToken()
        let raw = UnsafeBufferPointer(start: p + token.start, count: token.count)
        guard token.escaped else { return String(decoding: raw, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.count)
        var k = 0
        while k < raw.count {
            let b = raw[k]
            guard b == Self.backslash else { bytes.append(b); k += 1; continue }
            let e = raw[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = Self.hexValue(raw, k)
                k += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {  // a checked pair: \uD8xx\uDCxx
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (Self.hexValue(raw, k + 2) - 0xDC00)
                    k += 6
                }
                guard let s = Unicode.Scalar(scalar) else { throw Bail() }
                bytes.append(contentsOf: UTF8.encode(s)!)
            default: bytes.append(e)  // " \ /
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value of four hex digits already checked by `hex4`.
    private static func hexValue(_ raw: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in at..<at + 4 {
            let c = raw[k]
            let d: UInt8 = c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : (c | 0x20) - UInt8(ascii: "a") + 10
            v = v << 4 | UInt32(d)
        }
        return v
    }

    private mutating func optionalString() throws(Bail) -> String? {
        try null() ? nil : try string()
    }

    private mutating func skipOptionalString() throws(Bail) {
        if try !null() { _ = try stringToken() }
    }

    /// A field name in a typed object: an escaped name could spell a field, so it is not handled.
    private mutating func fieldName() throws(Bail) -> Token {
        let token = try stringToken()
        guard !token.escaped else { throw Bail() }
        return token
    }

    /// Whether an unescaped name is `name`, byte for byte. (JSONDecoder compares names as Swift
    /// strings, by canonical equivalence; the only non-ASCII characters equivalent to ASCII ones
    /// are U+212A K, U+037E ; and U+1FEF `, none of which is in a field name read here.)
    private func named(_ token: Token, _ name: StaticString) -> Bool {
        token.count == name.utf8CodeUnitCount && memcmp(p + token.start, name.utf8Start, token.count) == 0
    }

    // MARK: Containers

    private mutating func open(_ byte: UInt8) throws(Bail) {
        try expect(byte)
        depth += 1
        guard depth <= Self.maxDepth else { throw Bail() }
    }

    /// Reads an object: `member` reads each value (the cursor is on it). A trailing comma is left
    /// to JSONDecoder (which takes it).
    private mutating func object(typed: Bool, _ member: (inout JSONReader, Token) throws(Bail) -> Void) throws(Bail) {
        try open(UInt8(ascii: "{"))
        if try peek() == UInt8(ascii: "}") { i += 1; depth -= 1; return }
        while true {
            let name = typed ? try fieldName() : try stringToken()
            try expect(UInt8(ascii: ":"))
            try member(&self, name)
            let b = try peek()
            i += 1
            if b == UInt8(ascii: "}") { depth -= 1; return }
            guard b == UInt8(ascii: ",") else { throw Bail() }
        }
    }

    /// Reads an array: `element` reads each value.
    private mutating func array(_ element: (inout JSONReader) throws(Bail) -> Void) throws(Bail) {
        try open(UInt8(ascii: "["))
        if try peek() == UInt8(ascii: "]") { i += 1; depth -= 1; return }
        while true {
            try element(&self)
            let b = try peek()
            i += 1
            if b == UInt8(ascii: "]") { depth -= 1; return }
            guard b == UInt8(ascii: ",") else { throw Bail() }
        }
    }

    // MARK: Numbers and literals

    /// A number token (strict JSON grammar) and whether it has a fraction or an exponent.
    private mutating func numberToken() throws(Bail) -> (start: Int, count: Int, integer: Bool) {
        _ = try peek()
        let start = i
        var integer = true
        if i < end, p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { throw Bail() }
        if p[i] == UInt8(ascii: "0") {
            i += 1
        } else if p[i] >= UInt8(ascii: "1") && p[i] <= UInt8(ascii: "9") {
            while i < end, p[i] >= UInt8(ascii: "0") && p[i] <= UInt8(ascii: "9") { i += 1 }
        } else {
            throw Bail()
        }
        if i < end, p[i] == UInt8(ascii: ".") {
            integer = false
            i += 1
            try digits()
        }
        if i < end, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            integer = false
            i += 1
            if i < end, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            try digits()
        }
        return (start, i - start, integer)
    }

    private mutating func digits() throws(Bail) {
        let start = i
        while i < end, p[i] >= UInt8(ascii: "0") && p[i] <= UInt8(ascii: "9") { i += 1 }
        guard i > start else { throw Bail() }
    }

    /// An `Int`: plain digits only (a fraction or an exponent is left to JSONDecoder).
    private mutating func int() throws(Bail) -> Int {
        let token = try numberToken()
        guard token.integer, token.count <= 18 else { throw Bail() }
        var k = token.start
        let negative = p[k] == UInt8(ascii: "-")
        if negative { k += 1 }
        var v = 0
        while k < token.start + token.count { v = v * 10 + Int(p[k] - UInt8(ascii: "0")); k += 1 }
        return negative ? -v : v
    }

    private mutating func skipOptionalInt() throws(Bail) {
        if try !null() { _ = try int() }
    }

    /// A `Double`, parsed from the token's exact text as `Double(String)` does (correctly rounded).
    private mutating func double() throws(Bail) -> Double {
        try checkedDouble(try numberToken())
    }

    /// The value of a number token. Results JSONDecoder refuses or may treat otherwise are not
    /// handled: infinite, and zero written with an exponent or with a nonzero digit (JSONDecoder
    /// refuses 1e-400, and also -0.0e5 though it takes 0.0e5).
    private func checkedDouble(_ token: (start: Int, count: Int, integer: Bool)) throws(Bail) -> Double {
        let text = String(decoding: UnsafeBufferPointer(start: p + token.start, count: token.count), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw Bail() }
        if value == 0 {
            for k in token.start..<token.start + token.count {
                let c = p[k]
                if c | 0x20 == UInt8(ascii: "e") || (c >= UInt8(ascii: "1") && c <= UInt8(ascii: "9")) { throw Bail() }
            }
        }
        return value
    }

    private mutating func optionalDouble() throws(Bail) -> Double? {
        try null() ? nil : try double()
    }

    /// A number any `Double` field takes. Plain numbers of at most 300 characters (no exponent)
    /// can neither overflow nor underflow, so they are not parsed.
    private mutating func skipDouble() throws(Bail) {
        let token = try numberToken()
        if token.count <= 300, !(token.start..<token.start + token.count).contains(where: { p[$0] | 0x20 == UInt8(ascii: "e") }) {
            return
        }
        _ = try checkedDouble(token)
    }

    private mutating func bool() throws(Bail) -> Bool {
        switch try peek() {
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        default: throw Bail()
        }
    }

    // MARK: Any value

    /// Any JSON value a `JobValue` decodes (numbers must fit a `Double`), built into nothing.
    private mutating func skipValue() throws(Bail) {
        switch try peek() {
        case Self.quote: _ = try stringToken()
        case UInt8(ascii: "{"): try object(typed: false) { r, _ throws(Bail) in try r.skipValue() }
        case UInt8(ascii: "["): try array { r throws(Bail) in try r.skipValue() }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try skipDouble()
        }
    }

    private mutating func stringArray() throws(Bail) -> [String] {
        var out: [String] = []
        try array { r throws(Bail) in out.append(try r.string()) }
        return out
    }

    private mutating func skipStringArray() throws(Bail) {
        try array { r throws(Bail) in _ = try r.stringToken() }
    }

    /// A `[String: T]`: any names (a repeated name keeps one value, and every value is checked).
    private mutating func skipDictionary(_ value: (inout JSONReader) throws(Bail) -> Void) throws(Bail) {
        try object(typed: false) { r, _ throws(Bail) in try value(&r) }
    }

    /// Marks field `bit` as read; a field given twice is left to JSONDecoder.
    private static func mark(_ seen: inout UInt32, _ bit: Int) throws(Bail) {
        let flag = UInt32(1) << bit
        guard seen & flag == 0 else { throw Bail() }
        seen |= flag
    }

    // MARK: HumanRequest

    /// The view of a `HumanRequest`, every field validated as `JSONDecoder` would decode it.
    mutating func humanRequest() throws(Bail) -> ImportedRequest {
        var seen: UInt32 = 0
        var kind: HumanRequest.Kind?
        var valueType: AskStep.ValueType?
        var title: String?, body: String?
        var choices: [String]?
        var requireReason: Bool?
        var requestedBy: String?
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "kind") {
                try Self.mark(&seen, 0)
                guard let k = HumanRequest.Kind(rawValue: try r.string()) else { throw Bail() }
                kind = k
            } else if r.named(name, "stepID") {
                try Self.mark(&seen, 1); _ = try r.stringToken()
            } else if r.named(name, "title") {
                try Self.mark(&seen, 2); title = try r.string()
            } else if r.named(name, "body") {
                try Self.mark(&seen, 3); body = try r.string()
            } else if r.named(name, "valueType") {
                try Self.mark(&seen, 4)
                if let text = try r.optionalString() {
                    guard let t = AskStep.ValueType(rawValue: text) else { throw Bail() }
                    valueType = t
                }
            } else if r.named(name, "choices") {
                try Self.mark(&seen, 5); choices = try r.stringArray()
            } else if r.named(name, "reviewers") {
                try Self.mark(&seen, 6); try r.skipStringArray()
            } else if r.named(name, "requireReason") {
                try Self.mark(&seen, 7); requireReason = try r.bool()
            } else if r.named(name, "round") {
                try Self.mark(&seen, 8); _ = try r.int()
            } else if r.named(name, "template") {
                try Self.mark(&seen, 9); try r.skipOptionalString()
            } else if r.named(name, "state") {
                try Self.mark(&seen, 10)
                if try !r.null() { requestedBy = try r.flowState() }
            } else if r.named(name, "inner") {
                try Self.mark(&seen, 11)
                if try !r.null() { try r.innerRequest() }
            } else {
                try r.skipValue()
            }
        }
        // Every non-optional field must be there (bits 0–3, 5–8).
        guard seen & 0b1_1110_1111 == 0b1_1110_1111, let kind, let title, let body, let choices, let requireReason else {
            throw Bail()
        }
        return ImportedRequest(kind: kind, valueType: valueType, title: title, body: body, choices: choices,
                               requireReason: requireReason, requestedBy: requestedBy)
    }

    /// Validates a `FlowState`; returns `run.requestedBy`.
    private mutating func flowState() throws(Bail) -> String? {
        var seen: UInt32 = 0
        var requestedBy: String?
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "run") {
                try Self.mark(&seen, 0); requestedBy = try r.runInfo()
            } else if r.named(name, "input") {
                try Self.mark(&seen, 1); try r.skipDictionary { r throws(Bail) in try r.skipValue() }
            } else if r.named(name, "results") {
                try Self.mark(&seen, 2); try r.skipDictionary { r throws(Bail) in try r.stepResult() }
            } else if r.named(name, "feedback") {
                try Self.mark(&seen, 3); try r.skipOptionalString()
            } else if r.named(name, "rounds") {
                try Self.mark(&seen, 4); try r.skipDictionary { r throws(Bail) in _ = try r.int() }
            } else if r.named(name, "rejectedBy") {
                try Self.mark(&seen, 5); try r.skipOptionalString()
            } else if r.named(name, "llmRounds") {
                try Self.mark(&seen, 6)
                try r.skipDictionary { r throws(Bail) in try r.array { r throws(Bail) in try r.llmRound() } }
            } else {
                try r.skipValue()
            }
        }
        guard seen & 0b101_0111 == 0b101_0111 else { throw Bail() }  // run, input, results, rounds, llmRounds
        return requestedBy
    }

    /// Validates a `RunInfo`; returns `requestedBy`.
    private mutating func runInfo() throws(Bail) -> String? {
        var seen: UInt32 = 0
        var requestedBy: String?
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "id") {
                try Self.mark(&seen, 0); _ = try r.stringToken()
            } else if r.named(name, "job") {
                try Self.mark(&seen, 1); _ = try r.stringToken()
            } else if r.named(name, "attempt") {
                try Self.mark(&seen, 2); _ = try r.int()
            } else if r.named(name, "requestedBy") {
                try Self.mark(&seen, 3); requestedBy = try r.optionalString()
            } else if r.named(name, "startedAt") {
                try Self.mark(&seen, 4); _ = try r.stringToken()
            } else {
                try r.skipValue()
            }
        }
        guard seen & 0b1_0111 == 0b1_0111 else { throw Bail() }
        return requestedBy
    }

    /// Validates a `StepResult`.
    private mutating func stepResult() throws(Bail) {
        var seen: UInt32 = 0
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "kind") {
                try Self.mark(&seen, 0); _ = try r.stringToken()
            } else if r.named(name, "stdout") {
                try Self.mark(&seen, 1); try r.skipOptionalString()
            } else if r.named(name, "stderr") {
                try Self.mark(&seen, 2); try r.skipOptionalString()
            } else if r.named(name, "exitCode") {
                try Self.mark(&seen, 3); try r.skipOptionalInt()
            } else if r.named(name, "json") {
                try Self.mark(&seen, 4); try r.skipValue()
            } else if r.named(name, "text") {
                try Self.mark(&seen, 5); try r.skipOptionalString()
            } else if r.named(name, "model") {
                try Self.mark(&seen, 6); try r.skipOptionalString()
            } else if r.named(name, "decision") {
                try Self.mark(&seen, 7); try r.skipOptionalString()
            } else if r.named(name, "reason") {
                try Self.mark(&seen, 8); try r.skipOptionalString()
            } else if r.named(name, "comment") {
                try Self.mark(&seen, 9); try r.skipOptionalString()
            } else if r.named(name, "by") {
                try Self.mark(&seen, 10); try r.skipOptionalString()
            } else if r.named(name, "value") {
                try Self.mark(&seen, 11); try r.skipValue()
            } else if r.named(name, "output") {
                try Self.mark(&seen, 12); try r.skipOptionalString()
            } else if r.named(name, "promptTokens") {
                try Self.mark(&seen, 13); try r.skipOptionalInt()
            } else if r.named(name, "completionTokens") {
                try Self.mark(&seen, 14); try r.skipOptionalInt()
            } else if r.named(name, "attempts") {
                try Self.mark(&seen, 15); try r.skipOptionalInt()
            } else {
                try r.skipValue()
            }
        }
        guard seen & 1 == 1 else { throw Bail() }
    }

    /// Validates an `LLMStepPrompt.Round`.
    private mutating func llmRound() throws(Bail) {
        var seen: UInt32 = 0
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "draft") {
                try Self.mark(&seen, 0); _ = try r.stringToken()
            } else if r.named(name, "feedback") {
                try Self.mark(&seen, 1); try r.skipStringArray()
            } else {
                try r.skipValue()
            }
        }
        guard seen == 0b11 else { throw Bail() }
    }

    /// Validates an `InnerRequest` (its checkpoint: canonical base64, as JSONEncoder writes it).
    private mutating func innerRequest() throws(Bail) {
        var seen: UInt32 = 0
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "requestID") {
                try Self.mark(&seen, 0); _ = try r.stringToken()
            } else if r.named(name, "responseTypeName") {
                try Self.mark(&seen, 1); _ = try r.stringToken()
            } else if r.named(name, "checkpoint") {
                try Self.mark(&seen, 2); try r.skipBase64()
            } else {
                try r.skipValue()
            }
        }
        guard seen == 0b111 else { throw Bail() }
    }

    /// Canonical base64 (padded, zero trailing bits; `/` possibly escaped as `\/`), which
    /// `Data(base64Encoded:)` always accepts. Anything else is left to JSONDecoder.
    private mutating func skipBase64() throws(Bail) {
        try expect(Self.quote)
        var count = 0, padding = 0
        var last: UInt8 = 0
        while true {
            guard i < end else { throw Bail() }
            var c = p[i]
            i += 1
            if c == Self.quote { break }
            if c == Self.backslash {
                guard i < end, p[i] == UInt8(ascii: "/") else { throw Bail() }
                c = UInt8(ascii: "/")
                i += 1
            }
            if c == UInt8(ascii: "=") {
                padding += 1
                guard padding <= 2 else { throw Bail() }
            } else {
                guard padding == 0, let v = Self.base64Value(c) else { throw Bail() }
                last = v
            }
            count += 1
        }
        guard count % 4 == 0 else { throw Bail() }
        // The last character before the padding carries unused bits that must be zero.
        if padding == 1 { guard last & 0b11 == 0 else { throw Bail() } }
        if padding == 2 { guard last & 0b1111 == 0 else { throw Bail() } }
    }

    private static func base64Value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    // MARK: Policy

    /// A `RequestMail.Policy`.
    mutating func policy() throws(Bail) -> RequestMail.Policy {
        var seen: UInt32 = 0
        var onTimeout: String?, reminders: Int?
        var remindEvery: Double?, expiresAfter: Double?
        var escalateTo: [String]?, delegates: [String]?, forbid: [String]?
        var schedule: [Double]?
        try object(typed: true) { r, name throws(Bail) in
            if r.named(name, "onTimeout") {
                try Self.mark(&seen, 0); onTimeout = try r.string()
            } else if r.named(name, "remindEvery") {
                try Self.mark(&seen, 1); remindEvery = try r.optionalDouble()
            } else if r.named(name, "reminders") {
                try Self.mark(&seen, 2); reminders = try r.int()
            } else if r.named(name, "escalateTo") {
                try Self.mark(&seen, 3); escalateTo = try r.stringArray()
            } else if r.named(name, "delegates") {
                try Self.mark(&seen, 4); delegates = try r.stringArray()
            } else if r.named(name, "forbid") {
                try Self.mark(&seen, 5); forbid = try r.stringArray()
            } else if r.named(name, "expiresAfter") {
                try Self.mark(&seen, 6); expiresAfter = try r.optionalDouble()
            } else if r.named(name, "reminderSchedule") {
                try Self.mark(&seen, 7)
                if try !r.null() {
                    var times: [Double] = []
                    try r.array { r throws(Bail) in times.append(try r.double()) }
                    schedule = times
                }
            } else {
                try r.skipValue()
            }
        }
        guard let onTimeout, let reminders, let escalateTo, let delegates, let forbid else { throw Bail() }
        return RequestMail.Policy(onTimeout: onTimeout, remindEvery: remindEvery, reminders: reminders, escalateTo: escalateTo,
                                  delegates: delegates, forbid: forbid, expiresAfter: expiresAfter, reminderSchedule: schedule)
    }
}

// MARK: - Writer

/// Writes `HumanResponse` the way `JSONEncoder` with `.sortedKeys` does: keys in byte order,
/// `"`, `\`, `/` and control characters escaped (`\b \t \n \f \r`, the rest `\u00xx`), other
/// characters as UTF-8, whole numbers below 1e15 as integers, other numbers as
/// `Double.description` without a trailing `.0`.
struct JSONWriter {
    var out: [UInt8]

    enum Outcome { case written, notFinite, notHandled }

    mutating func response(_ r: HumanResponse) -> Outcome {
        out.append(UInt8(ascii: "{"))
        var comma = false
        func key(_ w: inout JSONWriter, _ name: StaticString) {
            if comma { w.out.append(UInt8(ascii: ",")) }
            comma = true
            w.out.append(UInt8(ascii: "\""))
            w.out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            w.out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        if let by = r.by { key(&self, "by"); string(by) }
        key(&self, "decision"); string(r.decision)
        if let reason = r.reason { key(&self, "reason"); string(reason) }
        if let value = r.value {
            key(&self, "value")
            let outcome = self.value(value)
            guard outcome == .written else { return outcome }
        }
        if let via = r.via { key(&self, "via"); string(via) }
        out.append(UInt8(ascii: "}"))
        return .written
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    mutating func string(_ s: String) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), b])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), b])
            case UInt8(ascii: "/"): out.append(contentsOf: [UInt8(ascii: "\\"), b])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        Self.hex[Int(b >> 4)], Self.hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    mutating func value(_ v: JobValue) -> Outcome {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            // As `JobValue.encode`: whole numbers below 1e15 as Int64, the rest as a Double.
            if n.rounded() == n, abs(n) < 1e15 {
                out.append(contentsOf: String(Int64(n)).utf8)
            } else {
                guard n.isFinite else { return .notFinite }
                var text = n.description
                if text.hasSuffix(".0") { text.removeLast(2) }
                out.append(contentsOf: text.utf8)
            }
        case .string(let s): string(s)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (k, element) in a.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                let outcome = value(element)
                guard outcome == .written else { return outcome }
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            // Byte order is the encoder's order for ASCII names; other names are left to it.
            guard o.keys.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) else { return .notHandled }
            out.append(UInt8(ascii: "{"))
            for (k, key) in o.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                string(key)
                out.append(UInt8(ascii: ":"))
                let outcome = value(o[key]!)
                guard outcome == .written else { return outcome }
            }
            out.append(UInt8(ascii: "}"))
        }
        return .written
    }
}
