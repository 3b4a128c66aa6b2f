import Foundation

/// Quoted-printable encoding (RFC 2045 §6.7) of UTF-8 text for a text body part.
///
/// Line ends in the input (LF, CRLF or CR) become CRLF hard breaks; encoded lines stay at most
/// 76 characters with `=` soft breaks; trailing spaces and tabs, `=`, control bytes and every
/// non-ASCII byte are `=XX`. A leading `.` or `From ` is encoded too, so the body survives
/// dot-stuffing and mbox writers unchanged.
enum QuotedPrintable {
    static func encode(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8 + 16)
        encode(text, into: &out)
        return out
    }

    /// Appends the encoding of `text` to `out`: lines found with memchr, each encoded once, straight
    /// into `out` after growing it by the worst case (every byte `=XX`, a soft break per 25 of
    /// them, CR → CRLF), then trimmed to what was written.
    static func encode(_ text: String, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { encode($0, into: &out) }
    }

    /// Appends the encoding of the UTF-8 `bytes` (see ``encode(_:into:)``).
    static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let base = out.count
        let worst = bytes.count * 4 + 16
        out.append(contentsOf: repeatElement(0, count: worst))
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int in
            var w = Writer(base: buffer.baseAddress! + base)
            // Line ends found with memchr (CR and LF searched separately, each once over the text).
            let count = bytes.count
            func find(_ byte: UInt8, from: Int) -> Int {
                guard from < count, let p = memchr(bytes.baseAddress! + from, Int32(byte), count - from) else { return count }
                return bytes.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
            }
            var nextCR = find(0x0D, from: 0), nextLF = find(0x0A, from: 0)
            var start = 0
            while true {
                let end = min(nextCR, nextLF)
                if end == count { break }
                encodeLine(bytes, start, end, into: &w)
                w.put(0x0D)
                w.put(0x0A)
                start = end + 1
                if bytes[end] == 0x0D, start < count, bytes[start] == 0x0A { start += 1 }
                if nextCR < start { nextCR = find(0x0D, from: start) }
                if nextLF < start { nextLF = find(0x0A, from: start) }
            }
            encodeLine(bytes, start, bytes.count, into: &w)
            return w.count
        }
        out.removeLast(worst - written)
    }

    /// Writes into memory already reserved for the worst case.
    private struct Writer {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0
        @inline(__always) mutating func put(_ byte: UInt8) {
            base[count] = byte
            count += 1
        }
        @inline(__always) mutating func put(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
            (base + count).update(from: bytes.baseAddress! + start, count: end - start)
            count += end - start
        }
    }

    private static let hex: StaticString = "0123456789ABCDEF"

    /// Encodes `bytes[start..<end]`, one input line without its line end.
    private static func encodeLine(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout Writer) {
        guard start < end else { return }
        let hex = QuotedPrintable.hex.utf8Start
        // "From " at the start of a line: its 'F' is encoded.
        let startsWithFrom = end - start >= 5 && bytes[start] == 0x46 && bytes[start + 1] == 0x72
            && bytes[start + 2] == 0x6F && bytes[start + 3] == 0x6D && bytes[start + 4] == 0x20
        var column = 0
        let last = end - 1
        var index = start
        while index < end {
            // A run of bytes written as they are: printable ASCII but '=', or a space or tab that
            // is not the line's last byte; never the line's first byte ('.', "From ") nor its
            // last, and never past column 75 (where a soft break may be due).
            if index > start {
                let runEnd = min(last, index + (75 - column))
                var j = index
                // Eight bytes at a time while all are in 0x20...0x7E and none is '=' (SWAR tests,
                // exact for "any byte": below 0x20, 0x7F or above, equal to '=').
                let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
                let base = bytes.baseAddress!
                while j + 8 <= runEnd {
                    let x = UnsafeRawPointer(base + j).loadUnaligned(as: UInt64.self)
                    let eq = x ^ (ones &* 0x3D)
                    let below = (x &- ones &* 0x20) & ~x
                    let isEquals = (eq &- ones) & ~eq
                    guard (x | below | (x &+ ones) | isEquals) & high == 0 else { break }
                    j += 8
                }
                while j < runEnd {
                    let b = bytes[j]
                    guard (b >= 0x20 && b <= 0x7E && b != 0x3D) || b == 0x09 else { break }
                    j += 1
                }
                if j > index {
                    out.put(bytes, index, j)
                    column += j - index
                    index = j
                    continue
                }
            }
            let byte = bytes[index]
            let isLast = index == last
            let mustEncode: Bool
            switch byte {
            case 0x3D: mustEncode = true                                  // '='
            case 0x20, 0x09: mustEncode = isLast                          // trailing whitespace
            case 0x2E: mustEncode = index == start                        // leading '.'
            case 0x46: mustEncode = index == start && startsWithFrom      // "From "
            case 0x21...0x7E: mustEncode = false
            default: mustEncode = true
            }
            let width = mustEncode ? 3 : 1
            // Keep room for the soft break '=' within 76 columns, unless this is the line's last byte.
            let limit = isLast ? 76 : 75
            if column + width > limit {
                out.put(0x3D)
                out.put(0x0D)
                out.put(0x0A)
                column = 0
            }
            if mustEncode {
                out.put(0x3D)
                out.put(hex[Int(byte >> 4)])
                out.put(hex[Int(byte & 0x0F)])
            } else {
                out.put(byte)
            }
            column += width
            index += 1
        }
    }
}
