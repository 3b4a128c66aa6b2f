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

    /// Appends the encoding of `text` to `out`: one pass over the UTF-8 bytes into a buffer
    /// sized for the worst case (every byte `=XX`, a soft break per 25 of them, CR → CRLF).
    static func encode(_ text: String, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            let encoded = [UInt8](unsafeUninitializedCapacity: bytes.count * 4 + 16) { buffer, count in
                var w = Writer(base: buffer.baseAddress!)
                var start = 0
                var i = 0
                while i < bytes.count {
                    let byte = bytes[i]
                    if byte == 0x0D || byte == 0x0A {
                        encodeLine(bytes, start, i, into: &w)
                        w.put(0x0D)
                        w.put(0x0A)
                        if byte == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                        start = i + 1
                    }
                    i += 1
                }
                encodeLine(bytes, start, bytes.count, into: &w)
                count = w.count
            }
            out.append(contentsOf: encoded)
        }
    }

    /// Writes into memory already reserved for the worst case.
    private struct Writer {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0
        @inline(__always) mutating func put(_ byte: UInt8) {
            base[count] = byte
            count += 1
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
        for index in start..<end {
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
        }
    }
}
