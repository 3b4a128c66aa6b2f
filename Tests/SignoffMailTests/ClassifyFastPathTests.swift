import Crypto
import Foundation
@testable import SignoffMail
import Testing

/// The classifier's faster paths give exactly what the definitions they replace give, on varied
/// input (random bytes and lines, the corpora's lines, crafted edge cases).
struct ClassifyFastPathTests {
    @Test func digestHexWrittenInPlaceEqualsTheByteByByteHex() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 31, 32, 33, 100, 1000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(TextFast.hex(contiguous: bytes) == TextFast.hex(bytes))
            let digest = SHA256.hash(data: bytes)
            #expect(TextFast.hex(contiguous: digest) == TextFast.hex(digest))
        }
        #expect(TextFast.hex(contiguous: [0x00, 0x0F, 0xA5, 0xFF] as [UInt8]) == "000fa5ff")
    }

    @Test func tokenHashIsTheSHA256HexOfTheLowerCasedToken() {
        for token in ["abc", "ABCdef123", "Tök", "İx", "", String(repeating: "k", count: 300)] {
            let expected = SHA256.hash(data: Data(token.lowercased().utf8)).map { String(format: "%02x", $0) }.joined()
            #expect(InboundClassifier.tokenHash(token) == expected, "\(token.debugDescription)")
        }
    }
}

/// `ReplyExtractor.visibleText` on lazily split lines gives what the extraction gave on the
/// eagerly split `[String]` lines (the definition, kept here), and `LazyLines` answers every
/// line question exactly as the `[String]` lines do.
struct LazyLinesTests {
    /// The extraction as it was defined on `TextFast.lines` (every line a String).
    static func eagerVisibleText(_ text: String) -> String {
        let lines = TextFast.lines(text)
        var start = 0
        var cut = ReplyExtractor.cutIndex(lines, from: start)
        var rounds = 0
        while rounds < 5, cut < lines.count, lines[start..<cut].allSatisfy(ReplyExtractor.isBlank),
              let headerLength = ReplyExtractor.quoteHeaderLength(lines, at: cut) {
            var next = cut + headerLength
            while next < lines.count, ReplyExtractor.isBlank(lines[next]) || ReplyExtractor.isQuoted(lines[next]) { next += 1 }
            guard next < lines.count else { break }
            start = next
            cut = ReplyExtractor.cutIndex(lines, from: start)
            rounds += 1
        }
        var kept = Array(lines[start..<cut])
        if let lastOwn = kept.lastIndex(where: { !ReplyExtractor.isQuoted($0) && !ReplyExtractor.isBlank($0) }) {
            kept = Array(kept[...lastOwn])
        } else {
            kept = []
        }
        while let last = kept.last, ReplyExtractor.isBlank(last) || ReplyExtractor.isSeparatorOnly(last) { kept.removeLast() }
        while let first = kept.first, ReplyExtractor.isBlank(first) { kept.removeFirst() }
        return kept.map { line in
            var l = Substring(line)
            while let c = l.last, c == " " || c == "\t" { l = l.dropLast() }
            return String(l)
        }.joined(separator: "\n")
    }

    /// Corpus emails, plus texts assembled at random from corpus and crafted lines with mixed line
    /// ends, quotes, blank lines, non-ASCII and combining marks.
    static let texts: [String] = {
        var out: [String] = []
        for folder in ["discourse-email_reply_trimmer/emails", "github-email_reply_parser", "mailgun-talon/standard_replies", "mailgun-talon"] {
            for file in Corpus.files(folder, extensions: ["txt", "eml", "html"]) {
                if let text = try? Corpus.text(file) { out.append(text) }
            }
        }
        let lines = ReplyPatternsTests.lines
        let extra = ["", " ", "\t", "> quoted", ">", " > x", "\u{A0}", "APPROVE: ok ", "REJECT: no\t", "a \u{301}", " \u{301}", ">\u{301}",
                     "-- ", "----", "Sent from my iPhone", "On Mon, 3 Feb 2026 at 10:00, A <a@b.c> wrote:", "From: A", "Sent: x", "To: y",
                     "-- reply above this line --", "ok ✓ ", "é\t", String(repeating: "x", count: 1200), "> " + String(repeating: "y", count: 700)]
        let ends = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let n = Int.random(in: 0...25, using: &rng)
            var t = ""
            for _ in 0..<n {
                t += Bool.random(using: &rng) ? extra.randomElement(using: &rng)! : lines.randomElement(using: &rng)!
                t += ends.randomElement(using: &rng)!
            }
            if Bool.random(using: &rng) { t += extra.randomElement(using: &rng)! }
            out.append(t)
        }
        return out
    }()

    @Test func visibleTextOnLazyLinesEqualsTheEagerDefinition() {
        for text in Self.texts {
            #expect(Array(ReplyExtractor.visibleText(text).utf8) == Array(Self.eagerVisibleText(text).utf8), "\(text.debugDescription)")
        }
    }

    @Test func lazyLinesAnswerLikeTheEagerLines() {
        // (with and without CR: text without CR is split by the memchr path)
        for text in Self.texts + Self.texts.map({ String(decoding: $0.utf8.filter { $0 != 0x0D }, as: UTF8.self) }) {
            let eager = TextFast.lines(text)
            let lazy = LazyLines(text)
            #expect(lazy.count == eager.count)
            guard lazy.count == eager.count else { continue }
            for i in 0..<eager.count {
                #expect(lazy.utf8Count(at: i) == eager[i].utf8.count)
                #expect(lazy.isQuotedLine(i) == ReplyExtractor.isQuoted(eager[i]), "\(eager[i].debugDescription)")
                #expect(lazy.isBlankLine(i) == ReplyExtractor.isBlank(eager[i]), "\(eager[i].debugDescription)")
                #expect(Array(lazy[i].utf8) == Array(eager[i].utf8))
                #expect(ReplyExtractor.endsReply(in: lazy, at: i) == ReplyExtractor.endsReply(eager, at: i))
            }
        }
    }
}

/// The header reader without per-field value copies gives the fields the copying definition
/// (kept here) gives; the classifier's once-parsed From and the in-place part walk answer like
/// the header-based entry points.
struct HeaderFastPathTests {
    /// `MIMEHeaders.parse` as it was defined (each value copied into an array, then decoded).
    static func copyingParse(_ bytes: ArraySlice<UInt8>) -> [MIMEHeaders.Field] {
        var fields: [MIMEHeaders.Field] = []
        var current: (name: String, value: [UInt8])?
        func flush() {
            if let c = current {
                let v = c.value
                if v.allSatisfy({ $0 < 0x80 }) {
                    var s = 0, e = v.count
                    while s < e, v[s] == 0x20 || v[s] == 0x09 { s += 1 }
                    while e > s, v[e - 1] == 0x20 || v[e - 1] == 0x09 { e -= 1 }
                    fields.append(.init(name: c.name, value: String(decoding: v[s..<e], as: UTF8.self)))
                } else {
                    fields.append(.init(name: c.name, value: String(TextFast.trimSpaces(Charsets.decodeHeaderBytes(v)))))
                }
            }
            current = nil
        }
        for rawLine in Lines(bytes) {
            var line = rawLine
            if line.last == 0x0D { line = line.dropLast() }
            guard let firstByte = line.first else { continue }
            if firstByte == 0x20 || firstByte == 0x09 {
                if current != nil { current!.value.append(contentsOf: line) }
                continue
            }
            flush()
            guard let colon = line.firstIndex(of: 0x3A) else { continue }
            let nameBytes = line[line.startIndex..<colon]
            guard !nameBytes.isEmpty, nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { continue }
            var valueStart = line.index(after: colon)
            while valueStart < line.endIndex, line[valueStart] == 0x20 || line[valueStart] == 0x09 { valueStart += 1 }
            current = (String(decoding: nameBytes, as: UTF8.self), Array(line[valueStart...]))
        }
        flush()
        return fields
    }

    /// Header blocks from the corpora's .eml files and assembled at random: folded lines (space
    /// or tab), CR LF and LF, trailing spaces, junk lines, empty lines, 8-bit UTF-8 and Latin-1
    /// values, names that are and are not the long common names.
    static let blocks: [[UInt8]] = {
        var out: [[UInt8]] = []
        for folder in ["mailgun-talon", "mailgun-talon/standard_replies", "github-email_reply_parser", "discourse-email_reply_trimmer/emails"] {
            for file in Corpus.files(folder, extensions: ["eml"]) {
                if let b = try? Corpus.bytes(file) { out.append(Array(MIMEMessage.splitHeaderBody(b[...]).0)) }
            }
        }
        let names = ["From", "To", "Subject", "Content-Transfer-Encoding", "content-transfer-encoding", "Content-Disposition", "Content-Dispositionx",
                     "Authentication-Results", "X-Long-Header-Name-Here", "Delivered-To", "Bad Name", "", "Ünïcode"]
        let values: [[UInt8]] = [Array("plain value".utf8), Array("  padded\t ".utf8), Array("caf\u{E9} ✓".utf8), [0x63, 0x61, 0x66, 0xE9],
                                 Array("=?utf-8?q?x?=".utf8), [], Array(" ".utf8), Array("a:b:c".utf8)]
        let ends: [[UInt8]] = [[0x0A], [0x0D, 0x0A], [0x0D, 0x0D, 0x0A]]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var b: [UInt8] = []
            for _ in 0..<Int.random(in: 0...8, using: &rng) {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: b += values.randomElement(using: &rng)!                       // junk line without colon (or empty)
                case 1: b += [Bool.random(using: &rng) ? 0x20 : 0x09] + values.randomElement(using: &rng)!   // continuation
                default: b += Array(names.randomElement(using: &rng)!.utf8) + [0x3A] + (Bool.random(using: &rng) ? [0x20] : []) + values.randomElement(using: &rng)!
                }
                b += ends.randomElement(using: &rng)!
            }
            if Bool.random(using: &rng), !b.isEmpty { b.removeLast() }
            out.append(b)
        }
        return out
    }()

    @Test func headerFieldsEqualTheCopyingDefinition() {
        for block in Self.blocks {
            let fast = MIMEHeaders.parse(block[...]).fields
            let slow = Self.copyingParse(block[...])
            #expect(fast.map { Array($0.name.utf8) } == slow.map { Array($0.name.utf8) }, "\(block)")
            #expect(fast.map { Array($0.value.utf8) } == slow.map { Array($0.value.utf8) }, "\(block)")
        }
    }

    @Test func onceParsedFromAnswersLikeTheHeaderEntryPoints() throws {
        let froms = ["Ann <ann@example.org>", "ann@example.org", "ANN@Example.ORG", "a@x.org, b@x.org", "Group: a@x.org;", "no address", "",
                     "=?utf-8?q?J=C3=B6rg?= <j@x.de>", "Jörg <jörg@x.de>", "mailer-daemon@x.org", "<>"]
        let reviewer = EmailAddress("ann@example.org")
        for count in 0...2 {
            for from in froms {
                let headers = MIMEHeaders(fields: Array(repeating: .init(name: "From", value: from), count: count) + [.init(name: "To", value: "t@x.org")])
                let values = headers.all("From")
                let first = EmailAddress.parseList(values.first ?? "")
                #expect(Authenticity.fromAddress(fromValues: values, firstParsed: first)?.address == Authenticity.fromAddress(headers)?.address)
                #expect(Authenticity.senderProblem(fromValues: values, firstParsed: first, reviewer: reviewer) == Authenticity.senderProblem(headers, reviewer: reviewer))
                var raw = values.map { "From: \($0)\r\n" }.joined() + "Subject: x\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
                raw += "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nx\r\n--b--\r\n"
                for r in [raw, raw.replacingOccurrences(of: "multipart/report; report-type=delivery-status", with: "multipart/mixed")] {
                    let m = try MIMEMessage.parse(Array(r.utf8))
                    #expect(AutomaticMailDetector.classify(m, fromAddresses: first) == AutomaticMailDetector.classify(m))
                }
            }
        }
    }

    @Test func inPlacePartWalkFindsWhatAllPartsFinds() throws {
        for file in Corpus.files("mailgun-talon", extensions: ["eml"]) + Corpus.files("mailgun-talon/standard_replies", extensions: ["eml"]) {
            let m = try MIMEMessage.parse(try Corpus.bytes(file))
            for type in Set(m.root.allParts().map(\.mimeType)).union(["message/delivery-status", "text/vnd.google.email-reaction+json"]) {
                #expect(AutomaticMailDetector.anyPart(m.root) { $0.mimeType == type } == m.root.allParts().contains { $0.mimeType == type })
            }
        }
    }
}

/// The byte loops of the MIME reader (quoted-printable runs, multipart delimiters by memchr and
/// memcmp) give what their per-byte definitions (kept here) give.
struct ByteLoopTests {
    /// Quoted-printable as defined per byte, then (optionally) `TextFast.normalizeLineEnds`.
    static func perByteQuotedPrintable(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let end = bytes.count
        while i < end {
            let b = bytes[i]
            if b == 0x3D {
                var j = i + 1
                while j < end, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                if j == end { i = end; continue }
                if bytes[j] == 0x0A { i = j + 1; continue }
                if bytes[j] == 0x0D, j + 1 < end, bytes[j + 1] == 0x0A { i = j + 2; continue }
                if i + 2 < end, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) { out.append(h << 4 | l); i += 3; continue }
                out.append(b); i += 1
            } else if b == 0x20 || b == 0x09 {
                var j = i
                while j < end, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                if j == end || bytes[j] == 0x0A || (bytes[j] == 0x0D && j + 1 < end && bytes[j + 1] == 0x0A) {
                    i = j
                } else {
                    while i < j { out.append(bytes[i]); i += 1 }
                }
            } else {
                out.append(b); i += 1
            }
        }
        return out
    }

    /// `splitMultipart` as defined on slices, line by line.
    static func lineByLineSplit(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>] {
        var sections: [ArraySlice<UInt8>] = []
        var sectionStart: Int? = nil
        var lineStart = body.startIndex
        let delimiter: [UInt8] = [0x2D, 0x2D] + boundary
        while lineStart < body.endIndex {
            let lf = body[lineStart...].firstIndex(of: 0x0A)
            let lineEnd = lf ?? body.endIndex
            let line = body[lineStart..<lineEnd]
            if line.count >= delimiter.count, line.starts(with: delimiter) {
                let rest = line.dropFirst(delimiter.count)
                let isClose = rest.starts(with: [0x2D, 0x2D])
                let tail = isClose ? rest.dropFirst(2) : rest
                if tail.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                    if let s = sectionStart {
                        var end = lineStart
                        if end > s, body[end - 1] == 0x0A { end -= 1; if end > s, body[end - 1] == 0x0D { end -= 1 } }
                        sections.append(body[s..<max(s, end)])
                    }
                    if isClose { return sections }
                    sectionStart = lf.map { $0 + 1 } ?? body.endIndex
                }
            }
            lineStart = lf.map { $0 + 1 } ?? body.endIndex
        }
        if let s = sectionStart, s < body.endIndex { sections.append(body[s...]) }
        return sections
    }

    static func randomBytes(_ pieces: [[UInt8]], count: ClosedRange<Int>, using rng: inout SystemRandomNumberGenerator) -> [UInt8] {
        (0..<Int.random(in: count, using: &rng)).flatMap { _ in pieces.randomElement(using: &rng)! }
    }

    @Test func quotedPrintableRunsDecodeLikeThePerByteDefinition() {
        let pieces: [[UInt8]] = ["a", "Hello", " ", "  ", "\t", "=", "=3D", "=E2=9C=93", "=e2", "=4", "=G1", "= ", "=\t\r\n", "=\n", "=\r", "\r", "\n",
                                 "\r\n", " \r\n", "\t\n", "x=", "\u{E9}", ">", "="].map { Array($0.utf8) } + [[0x00], [0xFF], [0x0D, 0x0D, 0x0A]]
        var rng = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = [[], [0x3D], [0x20], [0x0D], [0x0A]]
        for _ in 0..<20_000 { inputs.append(Self.randomBytes(pieces, count: 0...30, using: &rng)) }
        for input in inputs {
            let expected = Self.perByteQuotedPrintable(input)
            #expect(TransferEncoding.decodeQuotedPrintable(input[...]) == expected, "\(input)")
            let offsetSlice = ([0x41] + input)[1...]   // a slice not starting at index 0
            #expect(TransferEncoding.decodeNormalizingLineEnds(offsetSlice, encoding: "quoted-printable") == TextFast.normalizeLineEnds(expected), "\(input)")
        }
    }

    @Test func multipartDelimitersSplitLikeTheLineByLineDefinition() {
        let boundary = Array("b42".utf8)
        let pieces: [[UInt8]] = ["--b42", "--b42--", "--b4", "--b42x", "--b42 ", "--b42\t\r", "--b42-- x", "-b42", "text", " ", "\r", "\n", "\r\n", "--",
                                 "Content-Type: text/plain", "\u{E9}"].map { Array($0.utf8) }
        var rng = SystemRandomNumberGenerator()
        var bodies: [[UInt8]] = [[], Array("--b42".utf8), Array("--b42\n".utf8), Array("--b42\r\nx\r\n--b42--".utf8)]
        for _ in 0..<20_000 { bodies.append(Self.randomBytes(pieces, count: 0...14, using: &rng)) }
        for body in bodies {
            for slice in [body[...], ([0x0A, 0x41] + body)[2...]] {
                let fast = MIMEMessage.splitMultipart(slice, boundary: boundary)
                let slow = Self.lineByLineSplit(slice, boundary: boundary)
                #expect(fast.map { $0.startIndex } == slow.map { $0.startIndex } && fast.map { $0.endIndex } == slow.map { $0.endIndex }, "\(body)")
            }
        }
    }
}

/// The small-string shortcuts (keyword split and emphasis on bytes, parameter names already in
/// lower case, out-of-office patterns by first byte, thread ids compared ignoring ASCII case)
/// answer like their definitions (kept here).
struct SmallStringShortcutTests {
    static let samples: [String] = {
        var out = ByteShortcutTests.samples
        let pieces = ["APPROVE", "Approved", "reject", "REJECTED", "Value", "delegate", "delegates", "approv", "*", "_", ":", " ", "é", "\u{301}",
                      "K\u{212A}", "ß", "x", "1", "?", "—", "✓", "\r\n", "\t"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            out.append((0..<Int.random(in: 0...4, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined())
        }
        return out
    }()

    @Test func keywordSplitAndEmphasisAgreeWithTheCharacterDefinitions() {
        for s in Self.samples {
            let word = s.prefix(while: { $0.isLetter })
            let expected: DecisionGrammar.Keyword?
            switch word.lowercased() {
            case "approve", "approved": expected = .approve
            case "reject", "rejected": expected = .reject
            case "value": expected = .value
            case "delegate": expected = .delegate
            default: expected = nil
            }
            let (k, rest) = DecisionGrammar.splitKeyword(s)
            #expect(k == expected, "\(s.debugDescription)")
            #expect(Array(rest.utf8) == Array((expected == nil ? Substring(s) : s[word.endIndex...]).utf8), "\(s.debugDescription)")

            var t = Substring(s)
            while let c = t.first, c == "*" || c == "_" { t = t.dropFirst() }
            var out = ""
            var idx = t.startIndex
            while idx < t.endIndex, t[idx].isLetter { out.append(t[idx]); idx = t.index(after: idx) }
            var r = t[idx...]
            while let c = r.first, c == "*" || c == "_" { r = r.dropFirst() }
            #expect(Array(DecisionGrammar.stripEmphasis(s).utf8) == Array((out + r).utf8), "\(s.debugDescription)")
        }
    }

    @Test func parameterLookupAgreesWithLowerCasedNames() {
        let value = MIMEHeaderValue.parse("text/plain; charset=utf-8; Format=flowed; delsp=yes; k\u{212A}=kelvin; ß=sharp; ü=u")
        for name in ["charset", "CHARSET", "Charset", "format", "FORMAT", "delsp", "DelSp", "kk", "KK", "k\u{212A}", "ß", "SS", "ü", "Ü", "", "x"] {
            #expect(value[name] == value.parameters[name.lowercased()], "\(name.debugDescription)")
        }
    }

    @Test func outOfOfficeByFirstByteAgreesWithEveryPattern() {
        func definition(_ subject: String) -> String? {
            var s = TextFast.trimWhitespaces(subject.lowercased())
            while s.hasPrefix("["), let close = s.firstIndex(of: "]") {
                s = String(s[s.index(after: close)...]).trimmingCharacters(in: .whitespaces)
            }
            if s.hasPrefix("auto:") { return "auto:" }
            return AutomaticMailDetector.outOfOfficePatterns.first { s.hasPrefix($0) }
        }
        var subjects = ["Re: [signoff] Please review 1", "", " ", "[x]", "[x] Out of Office", "AUTO: away", "Réponse automatique", "Re\u{301}ponse automatique",
                        "o\u{301}ut of office", "\u{212A}", "Ausência", "ausência: x", "On vacation", "on vacation!", "[list] [x]  urlaub"]
        subjects += AutomaticMailDetector.outOfOfficePatterns.flatMap { [$0, $0.uppercased(), "re: " + $0, "[a] " + $0, String($0.dropLast()), $0 + "\u{301}"] }
        for s in subjects { #expect(AutomaticMailDetector.outOfOfficePhrase(s) == definition(s), "\(s.debugDescription)") }
    }

    @Test func threadCheckAgreesWithTheLowerCasedDefinition() {
        func definition(_ h: MIMEHeaders, _ info: InboundTokenInfo) -> String? {
            guard !info.issuedMessageIDs.isEmpty else { return nil }
            let refs = (h.all("In-Reply-To") + h.all("References")).flatMap(MessageID.all).map { $0.lowercased() }
            guard !refs.isEmpty else { return nil }
            let issued = Set(info.issuedMessageIDs.map { $0.lowercased() })
            if refs.contains(where: issued.contains) { return nil }
            let ourDomains = Set(issued.compactMap { $0.split(separator: "@").last.map(String.init) })
            if let foreign = refs.first(where: { ref in ref.split(separator: "@").last.map { ourDomains.contains(String($0)) } ?? false }) {
                return "the token and the thread disagree: the reply answers <\(foreign)>, which was not sent for request \(info.requestID)"
            }
            return nil
        }
        let classifier = InboundClassifier(config: InboundConfig(replyAddress: EmailAddress("a@signoff.test"), strictAuthservID: nil), lookup: { _ in nil })
        let ids = ["req-1@signoff.test", "REQ-1@Signoff.Test", "req-2@signoff.test", "other@else.org", "ré-1@signoff.test", "RÉ-1@signoff.test",
                   "K\u{212A}@signoff.test", "kk@signoff.test", "x"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var fields: [MIMEHeaders.Field] = []
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let name = ["In-Reply-To", "References", "in-reply-to", "Subject"].randomElement(using: &rng)!
                let value = (0..<Int.random(in: 0...3, using: &rng)).map { _ in "<\(ids.randomElement(using: &rng)!)>" }.joined(separator: " ")
                fields.append(.init(name: name, value: value.isEmpty ? ids.randomElement(using: &rng)! : value))
            }
            let issued = (0..<Int.random(in: 0...2, using: &rng)).map { _ in ids.randomElement(using: &rng)! }
            let info = InboundTokenInfo(requestID: "r", reviewer: EmailAddress("a@x.org"), expiresAt: nil, state: .open,
                                        expected: .approval(rejectReasonRequired: true), issuedMessageIDs: issued)
            let h = MIMEHeaders(fields: fields)
            #expect(classifier.threadProblem(h, info: info) == definition(h, info), "\(fields) \(issued)")
        }
    }
}

/// Header-value and trimming shortcuts: ASCII trim (and lower-case) in one step, the no-trim
/// fast exit, blank lines decided from ASCII bytes, quoted parameters without backslashes read
/// in place — each against its definition.
struct TrimShortcutTests {
    static let samples: [String] = SmallStringShortcutTests.samples + [
        "\u{0600}x", "\u{0600} ", " \u{0600}", "\u{110BD}a", "\u{0600}\t", "\u{A0}", "\u{A0}x\u{A0}", " \u{301}", "x \u{301}", "\u{2003}", "\u{2003}a",
        "\r\n", " \r\n ", "\u{0600}\r\n", "a\u{0600}", "\t\u{85}", "\u{85}", "\u{2028}",
    ]

    @Test func trimmingShortcutsAgreeWithTheCharacterLoop() {
        for s in Self.samples {
            var sub = Substring(s)
            while let c = sub.first, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropFirst() }
            while let c = sub.last, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropLast() }
            #expect(Array(TextFast.trimSpaces(s).utf8) == Array(sub.utf8), "\(s.debugDescription)")
            #expect(Array(s.trimmedSpaces.utf8) == Array(sub.utf8), "\(s.debugDescription)")
            #expect(Array(Substring(s).trimmedSpaces.utf8) == Array(sub.utf8), "\(s.debugDescription)")
            var copy = s
            copy.withUTF8 { u in
                if let fast = MIMEHeaderValue.asciiTrimmed(u, lowercased: true) {
                    #expect(Array(fast.utf8) == Array(TextFast.trimSpaces(s).lowercased().utf8), "\(s.debugDescription)")
                }
                if let fast = MIMEHeaderValue.asciiTrimmed(u, lowercased: false) {
                    #expect(Array(fast.utf8) == Array(String(TextFast.trimSpaces(s)).utf8), "\(s.debugDescription)")
                }
                if let blank = TextFast.blankFromBytes(u) { #expect(blank == s.allSatisfy(\.isWhitespace), "\(s.debugDescription)") }
            }
            #expect(ReplyExtractor.isBlank(s) == s.allSatisfy(\.isWhitespace), "\(s.debugDescription)")
        }
    }

    @Test func quotedParametersReadInPlaceEqualTheUnescapingLoop() {
        let pieces = ["a", "b42", " ", "\\\\", "\\\"", "\\a", "é", ";", "=", "'", "\t", "X"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let inner = (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let closed = Bool.random(using: &rng)
            let raw = "multipart/mixed; boundary=\"" + inner + (closed ? "\"; charset=x" : "")
            // The unescaping loop on the bytes after the opening quote.
            let u = Array(raw.utf8)
            var i = Array("multipart/mixed; boundary=\"".utf8).count
            var buf: [UInt8] = []
            while i < u.count, u[i] != 0x22 {
                if u[i] == 0x5C, i + 1 < u.count { i += 1 }
                buf.append(u[i]); i += 1
            }
            let value = MIMEHeaderValue.parse(raw)
            #expect(value["boundary"].map { Array($0.utf8) } == buf, "\(raw.debugDescription)")
            #expect(value["charset"] == (closed && i < u.count ? "x" : nil), "\(raw.debugDescription)")
        }
    }
}

/// The first Message-ID found without collecting the others is the first one `all` collects.
struct MessageIDShortcutTests {
    @Test func firstIDEqualsTheFirstOfAll() {
        let pieces = ["<", ">", "a@b", " ", "\t", "<>", "< >", "<x@y.org>", "ré@x", "@", ",", "id", "\u{2003}"]
        var rng = SystemRandomNumberGenerator()
        var values = ["", "<a@b>", "< a@b >", "<> <a@b>", "a@b", "a@b c@d", "<a@b", "a@b>", "<ré@x>"]
        for _ in 0..<10_000 { values.append((0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()) }
        for v in values {
            let ids = MessageID.all(v)
            #expect(MessageID.normalize(v) == (ids.first ?? v.trimmingCharacters(in: CharacterSet(charactersIn: " \t<>"))), "\(v.debugDescription)")
            if let fast = MessageID.firstASCII(v) { #expect(fast == ids.first, "\(v.debugDescription)") }
        }
    }
}

/// The byte-level address-list reader gives, on ASCII text, what the Character reader gives;
/// the classifier's precomputed reply-address key finds the tokens the per-call key finds.
struct AddressShortcutTests {
    @Test func asciiAddressListEqualsTheCharacterReader() {
        let pieces = ["Ann", " ", "\t", "<", ">", "@", "a@b.org", "\"", "\\", "(", ")", ",", ";", ":", "Group", "=?utf-8?q?J=C3=B6rg?=",
                      "x.y", "@r1,@r2:", "\r\n", ".", "+tag", "APPROVALS+Tok@Signoff.Test"]
        var rng = SystemRandomNumberGenerator()
        var values = ["", "Ann <ann@x.org>", "ann@x.org, bob@y.org", "\"Doe, J\" <j@d.org>", "g: a@b, c@d;", "<@r:u@h>", "a <b@c> <d@e", "(c) x@y (d)"]
        for _ in 0..<20_000 { values.append((0..<Int.random(in: 0...9, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()) }
        for v in values {
            let fast = EmailAddress.parseListASCII(v)
            let slow = EmailAddress.parseListCharacters(v)
            #expect(fast.map(\.address) == slow.map(\.address) && fast.map(\.displayName) == slow.map(\.displayName), "\(v.debugDescription)")
        }
    }

    @Test func changingTheConfigChangesTheAddressTokensAreReadFrom() async throws {
        var classifier = InboundClassifier(config: InboundConfig(replyAddress: EmailAddress("old@signoff.test"), strictAuthservID: nil),
                                           lookup: { _ in nil })
        classifier.config.replyAddress = EmailAddress("Approvals@Signoff.Test")
        let raw = "From: a@x.org\r\nTo: approvals+Tok123@signoff.test\r\nMessage-ID: <m@x>\r\nSubject: Re\r\n\r\nAPPROVE\r\n"
        let r = try await classifier.classify(Array(raw.utf8), now: Date())
        #expect(r.outcome == .unmatched)
        #expect(r.tokenHash == InboundClassifier.tokenHash("tok123"))
        classifier.config = InboundConfig(replyAddress: EmailAddress("other@signoff.test"), strictAuthservID: nil)
        #expect(try await classifier.classify(Array(raw.utf8), now: Date()).tokenHash == nil)
    }
}

/// The separator check without the star/space re-trim (when no end byte needs it) and the
/// byte-count guards answer like the Character definitions.
struct SeparatorShortcutTests {
    @Test func separatorCheckAgreesWithTheDefinition() {
        func definition(_ trimmedLine: String) -> Bool {
            guard trimmedLine.count < 120 else { return false }
            var t = Substring(trimmedLine).unicodeScalars
            while let c = t.first, c == "*" || c == " " { t.removeFirst() }
            while let c = t.last, c == "*" || c == " " { t.removeLast() }
            let s = String(t)
            if let fast = ReplyPatternsASCII.withPlainASCII(s, ReplyPatternsASCII.separator) { return fast }
            return ReplyExtractor.separatorRegex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }
        let extra = ["*-----Original Message-----*", " * Forwarded message * ", "**", "* ", "*\u{301}original message", "original message *\u{301}",
                     String(repeating: "é", count: 100) + " original message", String(repeating: "-", count: 119) + "é"]
        for s in SmallStringShortcutTests.samples + extra {
            #expect(ReplyExtractor.isOriginalMessageSeparator(s) == definition(s), "\(s.debugDescription)")
        }
    }
}

/// The grammar's byte shortcuts (question mark, separator, trailing whitespace and emphasis)
/// answer like the Character definitions.
struct GrammarShortcutTests {
    @Test func grammarShortcutsAgreeWithTheCharacterDefinitions() {
        let extra = ["?", "?\u{301}", "x?", "x?\u{301}", "\u{0600}?", ":", ":\u{301}", "—x", "：x", "-", ".", ",", "\u{0600}:", "x\u{0600}a", "a \r\n",
                     "a\u{2003}", "a\u{0600}x", "ok*", "ok_", "ok*\u{301}", "ok _ ", "*"]
        for s in TrimShortcutTests.samples + extra {
            for line in ["APPROVE", "APPROVE?", s] {
                #expect(DecisionGrammar.asksQuestion(after: s, line: line) == (s.hasPrefix("?") || line.hasSuffix("?")), "\(s.debugDescription) \(line.debugDescription)")
            }
            #expect(DecisionGrammar.startsWithSeparator(s) == (s.first.map { DecisionGrammar.separators.contains($0) } == true), "\(s.debugDescription)")
            #expect(DecisionGrammar.lastIsWhitespace(s) == (s.last?.isWhitespace == true), "\(s.debugDescription)")
            var t = Substring(s)
            while let c = t.last, c == "*" || c == "_" { t = t.dropLast() }
            #expect(Array(DecisionGrammar.stripTrailingEmphasis(s).utf8) == Array(TextFast.trimWhitespaces(String(t)).utf8), "\(s.debugDescription)")
        }
    }
}

/// The header/body split found with memchr is the one the LF-by-LF definition finds.
struct HeaderBodySplitTests {
    static func definition(_ bytes: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        var i = bytes.startIndex
        if i < bytes.endIndex, bytes[i] == 0x0A { return (bytes[i..<i], bytes[(i + 1)...]) }
        if i + 1 < bytes.endIndex, bytes[i] == 0x0D, bytes[i + 1] == 0x0A { return (bytes[i..<i], bytes[(i + 2)...]) }
        while let lf = bytes[i...].firstIndex(of: 0x0A) {
            let next = lf + 1
            if next < bytes.endIndex, bytes[next] == 0x0A { return (bytes[bytes.startIndex..<next], bytes[(next + 1)...]) }
            if next + 1 < bytes.endIndex, bytes[next] == 0x0D, bytes[next + 1] == 0x0A { return (bytes[bytes.startIndex..<next], bytes[(next + 2)...]) }
            i = next
        }
        return (bytes, bytes[bytes.endIndex...])
    }

    @Test func splitEqualsTheDefinition() {
        let pieces: [[UInt8]] = ["a", "H: v", "\n", "\r", "\r\n", " ", "x"].map { Array($0.utf8) }
        var rng = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = [[], [0x0A], [0x0D], [0x0D, 0x0A], [0x0A, 0x0A], [0x41, 0x0A, 0x0D]]
        for _ in 0..<20_000 { inputs.append(ByteLoopTests.randomBytes(pieces, count: 0...10, using: &rng)) }
        for input in inputs {
            for slice in [input[...], ([0x41, 0x0A] + input)[2...]] {
                let (h, b) = MIMEMessage.splitHeaderBody(slice)
                let (dh, db) = Self.definition(slice)
                #expect(h.startIndex == dh.startIndex && h.endIndex == dh.endIndex && b.startIndex == db.startIndex && b.endIndex == db.endIndex, "\(input)")
            }
        }
    }
}
