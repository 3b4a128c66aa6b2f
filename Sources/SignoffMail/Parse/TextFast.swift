import Foundation

/// Small native string helpers for hot paths (Foundation's bridged versions cost more than the
/// parsing they serve).
enum TextFast {
    /// `s` without leading and trailing spaces and tabs.
    @inline(__always)
    static func trimSpaces<S: StringProtocol>(_ s: S) -> Substring {
        var sub = Substring(s)
        while let c = sub.first, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropFirst() }
        while let c = sub.last, c == " " || c == "\t" || c == "\u{A0}" { sub = sub.dropLast() }
        return sub
    }

    /// Whether two ASCII names are equal ignoring case (header names).
    @inline(__always)
    static func asciiEqualsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where p != q {
            let lp = (p >= 0x41 && p <= 0x5A) ? p | 0x20 : p
            let lq = (q >= 0x41 && q <= 0x5A) ? q | 0x20 : q
            if lp != lq { return false }
        }
        return true
    }

    /// CRLF and lone CR → LF, on bytes.
    static func normalizeLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0x0D) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0D {
                out.append(0x0A)
                if i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
            } else { out.append(b) }
            i += 1
        }
        return out
    }

    /// Lines split at LF and CRLF (Swift treats "\r\n" as one Character).
    static func lines(_ text: String) -> [String] {
        // Scans bytes (grapheme breaking is the slow part of Character iteration); CR and LF
        // are ASCII, so every cut is on a scalar boundary.
        var out: [String] = []
        let u = text.utf8
        var start = u.startIndex
        var i = u.startIndex
        while i != u.endIndex {
            let b = u[i]
            if b == 0x0A || b == 0x0D {
                out.append(String(text[start..<i]))
                var next = u.index(after: i)
                if b == 0x0D, next != u.endIndex, u[next] == 0x0A { next = u.index(after: next) }
                start = next
                i = next
                continue
            }
            i = u.index(after: i)
        }
        out.append(String(text[start..<u.endIndex]))
        return out
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of bytes.
    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        for b in bytes { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs, as a String.
    var trimmedSpaces: String { String(TextFast.trimSpaces(self)) }
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
