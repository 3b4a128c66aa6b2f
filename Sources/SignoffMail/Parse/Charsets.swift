import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes in a declared charset → text, never failing: undecodable bytes become U+FFFD.
///
/// UTF-8 and US-ASCII are decoded directly; ISO-8859-1 is read as windows-1252 (what senders
/// mean by it, per WHATWG); everything else goes through iconv.
public enum Charsets {
    /// Decodes `bytes` declared as `charset` (case-insensitive; nil or unknown → UTF-8, falling
    /// back to windows-1252 when the bytes are not valid UTF-8).
    public static func decode<C: Collection>(_ bytes: C, charset: String?) -> String where C.Element == UInt8 {
        let name = normalize(charset)
        switch name {
        case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "unknown-8bit", "x-unknown", "unknown":
            return utf8OrLatin(bytes)
        case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "windows-1252", "cp1252", "x-cp1252", "cp819":
            return windows1252(bytes)
        default:
            if let s = iconvDecode(Array(bytes), from: name) { return s }
            return utf8OrLatin(bytes)
        }
    }

    /// Raw 8-bit header bytes: UTF-8 when valid (RFC 6532), else windows-1252.
    static func decodeHeaderBytes(_ bytes: [UInt8]) -> String {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return utf8OrLatin(bytes)
    }

    static func normalize(_ charset: String?) -> String {
        guard let charset else { return "" }
        // Trim spaces, tabs and quotes (as scalars, like Foundation's trimming with this set).
        var t = Substring(charset).unicodeScalars
        while let x = t.first, x == " " || x == "\t" || x == "\"" || x == "'" { t.removeFirst() }
        while let x = t.last, x == " " || x == "\t" || x == "\"" || x == "'" { t.removeLast() }
        var c = String(t).lowercased()
        if c.hasPrefix("x-mac-") { c = "mac" + c.dropFirst(6) }
        switch c {
        case "ks_c_5601-1987": return "cp949"
        case "gb2312", "gbk", "x-gbk": return "gb18030"   // superset, decodes what senders actually use
        case "iso-8859-8-i": return "iso-8859-8"
        default: return c
        }
    }

    static func utf8OrLatin<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        // Mostly UTF-8 with a few stray bytes keeps the UTF-8 reading; otherwise it is 8-bit text.
        var invalid = 0, multibyte = 0
        var it = Array(bytes)[...]
        var i = it.startIndex
        while i < it.endIndex {
            let b = it[i]
            if b < 0x80 { i += 1; continue }
            let len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0
            if len > 0, i + len <= it.endIndex, it[(i + 1)..<(i + len)].allSatisfy({ $0 & 0xC0 == 0x80 }) {
                multibyte += 1; i += len
            } else { invalid += 1; i += 1 }
        }
        it = [][...]
        if multibyte > invalid { return String(decoding: bytes, as: UTF8.self) }
        return windows1252(bytes)
    }

    private static let cp1252High: [UInt16] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    static func windows1252<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes {
            let v: UInt32 = (b >= 0x80 && b < 0xA0) ? UInt32(cp1252High[Int(b) - 0x80]) : UInt32(b)
            s.append(Unicode.Scalar(v)!)
        }
        return String(s)
    }

    /// iconv from `charset` to UTF-8; invalid sequences become U+FFFD. Nil when iconv does not
    /// know the charset.
    static func iconvDecode(_ bytes: [UInt8], from charset: String) -> String? {
        let cd = iconv_open("UTF-8", charset)
        if cd == iconv_t(bitPattern: -1) { return nil }
        defer { iconv_close(cd) }
        if bytes.isEmpty { return "" }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        var input = bytes
        var outBuf = [UInt8](repeating: 0, count: 4096)
        let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
        input.withUnsafeMutableBufferPointer { inPtr in
            var inLeft = inPtr.count
            var inCursor: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(inPtr.baseAddress!).assumingMemoryBound(to: CChar.self)
            outBuf.withUnsafeMutableBufferPointer { outPtr in
                while true {
                    var outLeft = outPtr.count
                    var outCursor: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outPtr.baseAddress!).assumingMemoryBound(to: CChar.self)
                    let r = inLeft > 0 ? iconv(cd, &inCursor, &inLeft, &outCursor, &outLeft) : iconv(cd, nil, nil, &outCursor, &outLeft)
                    let produced = outPtr.count - outLeft
                    output.append(contentsOf: UnsafeBufferPointer(start: outPtr.baseAddress, count: produced))
                    if r != -1 {
                        if inLeft == 0 { break }
                        continue
                    }
                    let err = errno
                    if err == E2BIG { continue }
                    // EILSEQ (invalid) or EINVAL (truncated at the end): skip one byte.
                    output.append(contentsOf: replacement)
                    if inLeft > 0 { inCursor = inCursor! + 1; inLeft -= 1 }
                    if inLeft == 0 { break }
                }
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
