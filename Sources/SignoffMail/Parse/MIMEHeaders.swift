import Foundation

/// The header section of a message or body part, in order, unfolded.
///
/// Names compare case-insensitively. Values are the unfolded raw text (8-bit bytes read as
/// UTF-8 when valid, else as windows-1252); call `decoded(_:)` for RFC 2047 decoding.
public struct MIMEHeaders: Sendable, Hashable {
    /// One header field: its name as written and its unfolded value without leading space.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
    }

    /// Every field, topmost first (the order matters for trace headers such as Delivered-To).
    public var fields: [Field]

    public init(fields: [Field] = []) { self.fields = fields }

    /// The first (topmost) value of `name`, raw.
    public func first(_ name: String) -> String? {
        fields.first { TextFast.asciiEqualsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of `name`, topmost first, raw.
    public func all(_ name: String) -> [String] {
        fields.filter { TextFast.asciiEqualsIgnoringCase($0.name, name) }.map(\.value)
    }

    /// The first value of `name` with RFC 2047 encoded-words decoded.
    public func decoded(_ name: String) -> String? { first(name).map(EncodedWords.decode) }

    /// Whether a field called `name` exists.
    public func contains(_ name: String) -> Bool { first(name) != nil }

    /// Parses a header block (everything before the blank line). Tolerates LF or CRLF,
    /// folded lines, a leading mbox `From ` line, and junk lines without a colon (skipped).
    public static func parse(_ bytes: ArraySlice<UInt8>) -> MIMEHeaders {
        var fields: [Field] = []
        fields.reserveCapacity(min(64, bytes.count / 24 + 1))
        bytes.withUnsafeBufferPointer { u in
            let n = u.count
            guard n > 0, let base = u.baseAddress else { return }
            // The field being read: its name and value bytes (a range of `u` until a folded
            // continuation line makes it a copy).
            var current: (name: String, start: Int, end: Int)?
            var folded: [UInt8]? = nil
            func finish(_ c: (name: String, start: Int, end: Int), _ folded: [UInt8]?) -> Field {
                if let folded { return folded.withUnsafeBufferPointer { field(c.name, $0) } }
                return field(c.name, UnsafeBufferPointer(rebasing: u[c.start..<c.end]))
            }
            // Lines split at LF (found with memchr); one CR before the LF is not part of the line.
            var pos = 0
            while pos < n {
                let lineStart = pos
                var lineEnd = n
                if let p = memchr(base + pos, 0x0A, n - pos) { lineEnd = UnsafeRawPointer(p) - UnsafeRawPointer(base) }
                pos = lineEnd + 1
                if lineEnd > lineStart, u[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                guard lineEnd > lineStart else { continue }
                let firstByte = u[lineStart]
                if firstByte == 0x20 || firstByte == 0x09 {
                    // Folded continuation: unfolding removes only the line break.
                    if let c = current {
                        if folded == nil { folded = Array(u[c.start..<c.end]) }
                        folded!.append(contentsOf: u[lineStart..<lineEnd])
                    }
                    continue
                }
                if let c = current { fields.append(finish(c, folded)) }
                current = nil
                folded = nil
                guard let colonPointer = memchr(base + lineStart, 0x3A, lineEnd - lineStart) else { continue }
                let colon = UnsafeRawPointer(colonPointer) - UnsafeRawPointer(base)
                let nameBytes = UnsafeBufferPointer(rebasing: u[lineStart..<colon])
                guard !nameBytes.isEmpty, nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { continue }
                var valueStart = colon + 1
                while valueStart < lineEnd, u[valueStart] == 0x20 || u[valueStart] == 0x09 { valueStart += 1 }
                current = (name(nameBytes), valueStart, lineEnd)
            }
            if let c = current { fields.append(finish(c, folded)) }
        }
        return MIMEHeaders(fields: fields)
    }

    /// A field from its name and raw value bytes (leading spaces already skipped).
    private static func field(_ name: String, _ v: UnsafeBufferPointer<UInt8>) -> Field {
        if v.allSatisfy({ $0 < 0x80 }) {
            // ASCII: trimming spaces and tabs on bytes is trimming characters (no U+00A0,
            // and a space or tab never joins a neighbour into one character).
            var s = 0, e = v.count
            while s < e, v[s] == 0x20 || v[s] == 0x09 { s += 1 }
            while e > s, v[e - 1] == 0x20 || v[e - 1] == 0x09 { e -= 1 }
            return Field(name: name, value: String(decoding: UnsafeBufferPointer(rebasing: v[s..<e]), as: UTF8.self))
        }
        let text = Charsets.decodeHeaderBytes(Array(v))
        return Field(name: name, value: String(TextFast.trimSpaces(text)))
    }

    /// Field names longer than a small string (15 bytes) that many parts carry, spelled as
    /// clients write them: a matching name reuses the literal (immortal, no allocation).
    private static let longCommonNames: [String] = ["Content-Transfer-Encoding", "Content-Disposition", "Authentication-Results"]

    /// The name as a String (a literal for the common long names).
    @inline(__always)
    private static func name(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.count > 15 {
            for n in longCommonNames where n.utf8.count == bytes.count && bytes.elementsEqual(n.utf8) { return n }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Splits bytes into lines at LF (the LF is not included; a CR before it is kept).
struct Lines: Sequence, IteratorProtocol {
    let bytes: ArraySlice<UInt8>
    var position: Int
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; self.position = bytes.startIndex }
    mutating func next() -> ArraySlice<UInt8>? {
        guard position < bytes.endIndex else { return nil }
        let start = position
        if let lf = bytes[start...].firstIndex(of: 0x0A) {
            position = lf + 1
            return bytes[start..<lf]
        }
        position = bytes.endIndex
        return bytes[start...]
    }
}

/// A header value with parameters, such as `Content-Type` or `Content-Disposition`.
///
/// The value is lower-cased; parameter names are lower-cased; RFC 2231 continuations
/// (`name*0*=`, `name*1=`) and `charset'lang'percent-encoded` values are joined and decoded;
/// RFC 2047 words inside quoted parameter values (a common violation) are decoded too.
public struct MIMEHeaderValue: Sendable, Hashable {
    public var value: String
    public var parameters: [String: String]

    public subscript(_ name: String) -> String? {
        // Names are looked up in lower case; an ASCII name without capitals already is.
        var copy = name
        let lower = copy.withUTF8 { u in !u.contains { $0 >= 0x80 || ($0 >= 0x41 && $0 <= 0x5A) } }
        return parameters[lower ? name : name.lowercased()]
    }

    public init(value: String, parameters: [String: String] = [:]) {
        self.value = value
        self.parameters = parameters
    }

    /// Parses `type/subtype; a=b; c="d e"`.
    public static func parse(_ raw: String) -> MIMEHeaderValue {
        // Scans UTF-8 bytes: every delimiter is ASCII, and a non-ASCII scalar's bytes are all
        // ≥ 0x80, so cutting and copying bytes gives the same strings as cutting scalars.
        var copy = raw
        return copy.withUTF8 { parse(bytes: $0) }
    }

    private static func parse(bytes u: UnsafeBufferPointer<UInt8>) -> MIMEHeaderValue {
        var i = 0
        let n = u.count
        func skipSpaceAndComments() {
            while i < n {
                let c = u[i]
                if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A { i += 1; continue }
                if c == 0x28 {
                    var depth = 0
                    while i < n {
                        if u[i] == 0x5C { i += 2; continue }
                        if u[i] == 0x28 { depth += 1 }
                        if u[i] == 0x29 { depth -= 1; if depth == 0 { i += 1; break } }
                        i += 1
                    }
                    continue
                }
                break
            }
        }
        func text(_ from: Int, _ to: Int) -> String { String(decoding: UnsafeBufferPointer(rebasing: u[from..<to]), as: UTF8.self) }
        skipSpaceAndComments()
        let headStart = min(i, n)
        while i < n, u[i] != 0x3B { i += 1 }
        let mainValue: String
        let headBytes = UnsafeBufferPointer(rebasing: u[headStart..<min(i, n)])
        if !headBytes.contains(0x28), let fast = asciiTrimmed(headBytes, lowercased: true) {
            mainValue = fast
        } else {
            let head = text(headStart, min(i, n))
            // Strip comments from the main value.
            let uncommented = head.utf8.contains(0x28) && head.contains("(") ? head.replacingOccurrences(of: #"\([^)]*\)"#, with: "", options: .regularExpression) : head
            mainValue = TextFast.trimSpaces(uncommented).lowercased()
        }
        var rawParams: [(String, String, Bool)] = []   // (name, value, wasQuoted)
        while i < n {
            guard u[i] == 0x3B else { i += 1; continue }
            i += 1
            skipSpaceAndComments()
            let nameStart = min(i, n)
            while i < n, u[i] != 0x3D, u[i] != 0x3B { i += 1 }
            let name = asciiTrimmed(UnsafeBufferPointer(rebasing: u[nameStart..<min(i, n)]), lowercased: true)
                ?? TextFast.trimSpaces(text(nameStart, min(i, n))).lowercased()
            guard i < n, u[i] == 0x3D else { continue }
            i += 1
            skipSpaceAndComments()
            var val: String
            var quoted = false
            if i < n, u[i] == 0x22 {
                quoted = true
                i += 1
                var stop = i
                while stop < n, u[stop] != 0x22, u[stop] != 0x5C { stop += 1 }
                if stop == n || u[stop] == 0x22 {
                    // No backslash before the closing quote: the value is the bytes between.
                    val = text(i, stop)
                    i = stop
                } else {
                    var buf: [UInt8] = []
                    while i < n, u[i] != 0x22 {
                        if u[i] == 0x5C, i + 1 < n { i += 1 }
                        buf.append(u[i]); i += 1
                    }
                    val = String(decoding: buf, as: UTF8.self)
                }
                if i < n { i += 1 }
            } else {
                let valueStart = min(i, n)
                while i < n, u[i] != 0x3B { i += 1 }
                val = asciiTrimmed(UnsafeBufferPointer(rebasing: u[valueStart..<min(i, n)]), lowercased: false)
                    ?? String(TextFast.trimSpaces(text(valueStart, min(i, n))))
            }
            if !name.isEmpty { rawParams.append((name, val, quoted)) }
        }
        return MIMEHeaderValue(value: mainValue, parameters: joinRFC2231(rawParams))
    }

    /// For ASCII bytes, `String(TextFast.trimSpaces(text))` (`.lowercased()` when asked) built
    /// from the bytes in one step: in ASCII text the space and tab Characters are single bytes
    /// and lower-casing is ASCII. Nil when a byte is not ASCII.
    static func asciiTrimmed(_ u: UnsafeBufferPointer<UInt8>, lowercased: Bool) -> String? {
        for b in u where b >= 0x80 { return nil }
        var s = 0, e = u.count
        while s < e, u[s] == 0x20 || u[s] == 0x09 { s += 1 }
        while e > s, u[e - 1] == 0x20 || u[e - 1] == 0x09 { e -= 1 }
        guard lowercased, u[s..<e].contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else {
            return String(decoding: UnsafeBufferPointer(rebasing: u[s..<e]), as: UTF8.self)
        }
        return String(unsafeUninitializedCapacity: e - s) { out in
            for k in s..<e { let b = u[k]; out[k - s] = (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
            return e - s
        }
    }

    private static func joinRFC2231(_ raw: [(String, String, Bool)]) -> [String: String] {
        var plain: [String: String] = [:]
        if !raw.contains(where: { $0.0.utf8.contains(0x2A) }) {
            // No `name*` parameter: only the first value of each name, RFC 2047 words decoded.
            plain.reserveCapacity(raw.count)
            for (name, value, quoted) in raw where plain[name] == nil {
                plain[name] = quoted && TextFast.containsBytes(value, "=?") ? EncodedWords.decode(value) : value
            }
            return plain
        }
        // name → [(index, value, extended)]
        var sections: [String: [(Int, String, Bool)]] = [:]
        for (name, value, quoted) in raw {
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                var rest = String(name[name.index(after: star)...])
                var extended = false
                if rest.hasSuffix("*") { extended = true; rest.removeLast() }
                if rest.isEmpty {
                    // name*=charset'lang'value (not continued) or name* with a trailing star only
                    sections[base, default: []].append((0, value, true))
                } else if let n = Int(rest) {
                    sections[base, default: []].append((n, value, extended))
                } else {
                    plain[name] = value
                }
            } else if plain[name] == nil {
                plain[name] = quoted && TextFast.containsBytes(value, "=?") ? EncodedWords.decode(value) : value
            }
        }
        for (base, parts) in sections {
            let sorted = parts.sorted { $0.0 < $1.0 }
            var charset = "us-ascii"
            var bytes: [UInt8] = []
            for (index, (_, value, extended)) in sorted.enumerated() {
                var v = Substring(value)
                if index == 0, extended {
                    let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                    if pieces.count == 3 {
                        if !pieces[0].isEmpty { charset = String(pieces[0]) }
                        v = pieces[2]
                    }
                }
                if extended { bytes.append(contentsOf: percentDecode(v)) } else { bytes.append(contentsOf: Array(v.utf8)) }
            }
            plain[base] = Charsets.decode(bytes, charset: charset)
        }
        return plain
    }

    private static func percentDecode(_ s: Substring) -> [UInt8] {
        var out: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == 0x25, i + 2 < u.count, let h = hexValue(u[i + 1]), let l = hexValue(u[i + 2]) {
                out.append(h << 4 | l); i += 3
            } else { out.append(u[i]); i += 1 }
        }
        return out
    }
}

@inline(__always) func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    case 0x61...0x66: return b - 0x61 + 10
    default: return nil
    }
}
