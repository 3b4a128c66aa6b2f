import Foundation

/// Small native string helpers for hot paths (Foundation's bridged versions cost more than the
/// parsing they serve).
enum TextFast {
    /// `s` without leading and trailing spaces and tabs.
    @inline(__always)
    static func trimSpaces<S: StringProtocol>(_ s: S) -> Substring {
        var sub = Substring(s)
        // " " and "\t" are single-byte Characters and U+00A0 is C2 A0: when neither end byte can
        // belong to one of them, there is nothing to trim.
        if let f = sub.utf8.first, let l = sub.utf8.last, f != 0x20, f != 0x09, f != 0xC2, l != 0x20, l != 0x09, l != 0xA0 { return sub }
        while let c = sub.first, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropFirst() }
        while let c = sub.last, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropLast() }
        return sub
    }

    /// Whether two ASCII names are equal ignoring case (header names).
    @inline(__always)
    static func asciiEqualsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        let fast = x.withContiguousStorageIfAvailable { p in
            y.withContiguousStorageIfAvailable { q -> Bool in
                for k in 0..<p.count where p[k] != q[k] {
                    let lp = (p[k] >= 0x41 && p[k] <= 0x5A) ? p[k] | 0x20 : p[k]
                    let lq = (q[k] >= 0x41 && q[k] <= 0x5A) ? q[k] | 0x20 : q[k]
                    if lp != lq { return false }
                }
                return true
            }
        }
        if let fast = fast ?? nil { return fast }
        for (p, q) in zip(x, y) where p != q {
            let lp = (p >= 0x41 && p <= 0x5A) ? p | 0x20 : p
            let lq = (q >= 0x41 && q <= 0x5A) ? q | 0x20 : q
            if lp != lq { return false }
        }
        return true
    }

    /// CRLF and lone CR → LF, on bytes.
    static func normalizeLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.withUnsafeBufferPointer({ p in p.count > 0 && memchr(p.baseAddress!, 0x0D, p.count) != nil }) else { return bytes }
        return bytes.withUnsafeBufferPointer { input in
            [UInt8](unsafeUninitializedCapacity: input.count) { out, written in
                var o = 0
                var i = 0
                let n = input.count
                while i < n {
                    let b = input[i]
                    if b == 0x0D {
                        out[o] = 0x0A
                        if i + 1 < n, input[i + 1] == 0x0A { i += 1 }
                    } else { out[o] = b }
                    o += 1
                    i += 1
                }
                written = o
            }
        }
    }

    /// Lines split at LF and CRLF (Swift treats "\r\n" as one Character).
    static func lines(_ text: String) -> [String] {
        // Scans bytes (grapheme breaking is the slow part of Character iteration); CR and LF
        // are ASCII, so every cut is on a scalar boundary and each piece is valid UTF-8.
        var out: [String] = []
        var copy = text
        copy.withUTF8 { u in
            var start = 0
            var i = 0
            let n = u.count
            while i < n {
                let b = u[i]
                if b == 0x0A || b == 0x0D {
                    out.append(String(decoding: UnsafeBufferPointer(rebasing: u[start..<i]), as: UTF8.self))
                    var next = i + 1
                    if b == 0x0D, next < n, u[next] == 0x0A { next += 1 }
                    start = next
                    i = next
                    continue
                }
                i += 1
            }
            out.append(String(decoding: UnsafeBufferPointer(rebasing: u[start..<n]), as: UTF8.self))
        }
        return out
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of bytes.
    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        for b in bytes { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lower-case hex of contiguous bytes (a digest), written straight into the string's
    /// storage: one allocation, no iterator copy of the bytes, no array growth.
    static func hex(contiguous bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { (u: UnsafeRawBufferPointer) in
            String(unsafeUninitializedCapacity: 2 * u.count) { out in
                hexDigits.withUnsafeBufferPointer { d in
                    for k in 0..<u.count {
                        out[2 * k] = d[Int(u[k] >> 4)]
                        out[2 * k + 1] = d[Int(u[k] & 0x0F)]
                    }
                }
                return 2 * u.count
            }
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs, as a String.
    var trimmedSpaces: String { String(TextFast.trimSpaces(self)) }
}

extension String {
    /// Without leading and trailing spaces and tabs; the string itself (no copy) when there is
    /// nothing to trim.
    var trimmedSpaces: String {
        let t = TextFast.trimSpaces(self)
        return t.utf8.count == utf8.count ? self : String(t)
    }
}

extension TextFast {
    /// `s.trimmingCharacters(in: .whitespaces)`, exactly: `.whitespaces` is tab and the
    /// Unicode space separators (Zs), trimmed here scalar by scalar.
    static func trimWhitespaces(_ s: String) -> String {
        let u = s.utf8
        guard let first = u.first, let last = u.last else { return s }
        if first < 0x80, last < 0x80, first != 0x20, first != 0x09, last != 0x20, last != 0x09 { return s }
        var v = Substring(s).unicodeScalars
        while let c = v.first, isWhitespace(c) { v.removeFirst() }
        while let c = v.last, isWhitespace(c) { v.removeLast() }
        return String(v)
    }

    /// Tab, the space separators (general category Zs) and U+200B, as Foundation has them.
    @inline(__always)
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Whether every byte of `s` is ASCII.
    @inline(__always)
    static func isASCII(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { u in u.allSatisfy { $0 < 0x80 } }
    }
}

extension TextFast {
    /// Whether `s` holds the ASCII bytes of `needle` (a plain byte search; for an ASCII needle
    /// this is what Foundation's `contains` finds whenever the character after the match is
    /// ASCII, and callers only use it where the answer is the same either way).
    @inline(__always)
    static func containsBytes(_ s: String, _ needle: StaticString) -> Bool {
        var copy = s
        return copy.withUTF8 { u in indexOf(u, needle, from: 0) != nil }
    }

    /// The first index of `needle` in `u` at or after `from`.
    static func indexOf(_ u: UnsafeBufferPointer<UInt8>, _ needle: StaticString, from: Int) -> Int? {
        let n = needle.utf8CodeUnitCount
        let w = needle.utf8Start
        guard n > 0, u.count >= n else { return n == 0 ? from : nil }
        let first = w[0]
        var i = from
        let last = u.count - n
        while i <= last {
            if u[i] == first {
                var k = 1
                while k < n, u[i + k] == w[k] { k += 1 }
                if k == n { return i }
            }
            i += 1
        }
        return nil
    }

    /// `s.contains(String(c))` (Foundation's search) for an ASCII character `c`, answered from the
    /// bytes when they settle it: no `c` byte → false; a `c` byte followed by an ASCII byte or
    /// the end → true (a character that is exactly `c`). Otherwise Foundation decides.
    static func containsCharacter(_ s: String, _ c: UInt8) -> Bool {
        var copy = s
        let fast = copy.withUTF8 { u -> Bool? in
            var seen = false
            for k in 0..<u.count where u[k] == c {
                if k + 1 == u.count || u[k + 1] < 0x80 { return true }
                seen = true
            }
            return seen ? nil : false
        }
        if let fast { return fast }
        return s.contains(String(Unicode.Scalar(c)))
    }

    /// Whether the bytes of `s` hold `needle` (lower-case ASCII), ASCII letters compared
    /// ignoring case (other bytes exactly).
    static func containsIgnoringASCIICase(_ s: String, _ needle: StaticString) -> Bool {
        var copy = s
        return copy.withUTF8 { u in
            let n = needle.utf8CodeUnitCount
            let w = needle.utf8Start
            guard u.count >= n else { return n == 0 }
            var i = 0
            while i <= u.count - n {
                var k = 0
                while k < n {
                    let b = u[i + k]
                    if ((b >= 0x41 && b <= 0x5A) ? b | 0x20 : b) != w[k] { break }
                    k += 1
                }
                if k == n { return true }
                i += 1
            }
            return false
        }
    }

    /// `s.lowercased().contains(needle)` (needle: lower-case ASCII) when `s` is ASCII — then the
    /// lower-casing is ASCII and every character is one byte; nil when `s` is not ASCII.
    static func asciiLowercasedContains(_ s: String, _ needle: StaticString) -> Bool? {
        s.utf8.allSatisfy { $0 < 0x80 } ? containsIgnoringASCIICase(s, needle) : nil
    }

    /// Whether every byte of `s` is ASCII whitespace (tab, LF, VT, FF, CR, space); for an ASCII
    /// string this is `allSatisfy(\.isWhitespace)`. Nil when `s` is not ASCII.
    @inline(__always)
    static func asciiIsBlank(_ s: String) -> Bool? {
        var copy = s
        return copy.withUTF8(asciiIsBlank)
    }

    /// `s.allSatisfy(\.isWhitespace)` from the bytes when they settle it: all ASCII whitespace
    /// → true; an ASCII byte that is not whitespace → false (its Character is not whitespace:
    /// it either starts that Character or follows a Prepend scalar, none of which is whitespace).
    /// Nil otherwise (non-ASCII bytes and ASCII whitespace only).
    @inline(__always)
    static func blankFromBytes(_ u: UnsafeBufferPointer<UInt8>) -> Bool? {
        var ascii = true
        for b in u {
            if b >= 0x80 { ascii = false; continue }
            if !(b == 0x20 || (b >= 0x09 && b <= 0x0D)) { return false }
        }
        return ascii ? true : nil
    }

    /// `asciiIsBlank` on bytes.
    @inline(__always)
    static func asciiIsBlank(_ u: UnsafeBufferPointer<UInt8>) -> Bool? {
        var blank = true
        for b in u {
            if b >= 0x80 { return nil }
            if !(b == 0x20 || (b >= 0x09 && b <= 0x0D)) { blank = false }
        }
        return blank
    }
}
