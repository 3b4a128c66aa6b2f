import Foundation

/// Content-Transfer-Encoding decoders, tolerant of what real clients and MTAs send.
public enum TransferEncoding {
    /// Decodes a body according to its `Content-Transfer-Encoding` (7bit, 8bit, binary and
    /// unknown values pass through unchanged).
    public static func decode(_ bytes: ArraySlice<UInt8>, encoding: String?) -> [UInt8] {
        switch encoding.map({ TextFast.trimWhitespaces($0).lowercased() }) {
        case "quoted-printable": return decodeQuotedPrintable(bytes)
        case "base64": return decodeBase64(bytes)
        default: return Array(bytes)
        }
    }

    /// `TextFast.normalizeLineEnds(decode(bytes, encoding:))`, with quoted-printable decoded and
    /// line ends normalized in one pass.
    static func decodeNormalizingLineEnds(_ bytes: ArraySlice<UInt8>, encoding: String?) -> [UInt8] {
        switch encoding.map({ TextFast.trimWhitespaces($0).lowercased() }) {
        case "quoted-printable": return bytes.withUnsafeBufferPointer { decodeQuotedPrintable(buffer: $0, normalizingLineEnds: true) }
        case "base64": return TextFast.normalizeLineEnds(decodeBase64(bytes))
        default: return TextFast.normalizeLineEnds(Array(bytes))
        }
    }

    /// Quoted-printable: `=XX` escapes and `=` soft line breaks; a stray `=` stays literal,
    /// trailing whitespace before a line break is dropped (RFC 2045 §6.7 rule 3).
    public static func decodeQuotedPrintable(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.withUnsafeBufferPointer { decodeQuotedPrintable(buffer: $0) }
    }

    private static func decodeQuotedPrintable(buffer bytes: UnsafeBufferPointer<UInt8>, normalizingLineEnds: Bool = false) -> [UInt8] {
        // The output is never longer than the input: written through a pointer, no appends.
        // With `normalizingLineEnds`, each decoded byte goes through `TextFast.normalizeLineEnds`'s
        // rule as it is written: CR → LF, and an LF right after a (decoded) CR is dropped.
        [UInt8](unsafeUninitializedCapacity: bytes.count) { out, written in
            var o = 0
            var afterCR = false
            @inline(__always) func emit(_ b: UInt8) {
                if normalizingLineEnds {
                    if b == 0x0D { out[o] = 0x0A; o += 1; afterCR = true; return }
                    if b == 0x0A, afterCR { afterCR = false; return }
                    afterCR = false
                }
                out[o] = b; o += 1
            }
            var i = 0
            let end = bytes.count
            while i < end {
                // A run of bytes that are not "=", space, tab, CR or LF is copied as it is (what
                // `emit` does with each of them).
                var b = bytes[i]
                if isPlainQP(b) {
                    repeat {
                        out[o] = b; o += 1; i += 1
                        guard i < end else { break }
                        b = bytes[i]
                    } while isPlainQP(b)
                    if normalizingLineEnds { afterCR = false }
                    if i == end { break }
                }
                if b == 0x3D {
                    var j = i + 1
                    while j < end, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                    if j == end { i = end; continue }                       // "=" at the very end
                    if bytes[j] == 0x0A { i = j + 1; continue }              // soft line break (LF)
                    if bytes[j] == 0x0D, j + 1 < end, bytes[j + 1] == 0x0A { i = j + 2; continue }
                    if i + 2 < end, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) {
                        emit(h << 4 | l); i += 3; continue
                    }
                    emit(b); i += 1
                } else if b == 0x20 || b == 0x09 {
                    // drop trailing whitespace at the end of an encoded line
                    var j = i
                    while j < end, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                    if j == end || bytes[j] == 0x0A || (bytes[j] == 0x0D && j + 1 < end && bytes[j + 1] == 0x0A) {
                        i = j
                    } else {
                        while i < j { emit(bytes[i]); i += 1 }
                    }
                } else {
                    emit(b); i += 1
                }
            }
            written = o
        }
    }

    /// Whether quoted-printable decoding copies `b` unchanged in any context: every byte but
    /// "=", space, tab, CR and LF (a bit mask over the bytes below 64).
    @inline(__always)
    static func isPlainQP(_ b: UInt8) -> Bool {
        let special: UInt64 = 1 << 0x3D | 1 << 0x20 | 1 << 0x09 | 1 << 0x0D | 1 << 0x0A
        return b >= 64 || special & (1 << UInt64(b)) == 0
    }

    private static let base64Table: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = Int8(i) }
        t[Int(UInt8(ascii: "-"))] = 62; t[Int(UInt8(ascii: "_"))] = 63   // URL-safe alphabet, seen in the wild
        return t
    }()

    /// Base64, tolerant: characters outside the alphabet are skipped, padding is optional,
    /// decoding stops at the first `=` group end and a dangling final sextet is dropped.
    public static func decodeBase64(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3 / 4)
        var acc: UInt32 = 0
        var n = 0
        for b in bytes {
            if b == 0x3D {
                // padding ends this quantum; continue reading (concatenated base64 happens)
                if n == 2 { out.append(UInt8(truncatingIfNeeded: acc >> 4)) }
                else if n == 3 { out.append(UInt8(truncatingIfNeeded: acc >> 10)); out.append(UInt8(truncatingIfNeeded: acc >> 2)) }
                acc = 0; n = 0
                continue
            }
            let v = base64Table[Int(b)]
            if v < 0 { continue }
            acc = acc << 6 | UInt32(v)
            n += 1
            if n == 4 {
                out.append(UInt8(truncatingIfNeeded: acc >> 16))
                out.append(UInt8(truncatingIfNeeded: acc >> 8))
                out.append(UInt8(truncatingIfNeeded: acc))
                acc = 0; n = 0
            }
        }
        if n == 2 { out.append(UInt8(truncatingIfNeeded: acc >> 4)) }
        else if n == 3 { out.append(UInt8(truncatingIfNeeded: acc >> 10)); out.append(UInt8(truncatingIfNeeded: acc >> 2)) }
        return out
    }
}
