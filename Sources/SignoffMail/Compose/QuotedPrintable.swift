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
        var lines: [ArraySlice<UInt8>] = []
        let bytes = Array(text.utf8)
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0D || bytes[i] == 0x0A {
                lines.append(bytes[start..<i])
                if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                start = i + 1
            }
            i += 1
        }
        lines.append(bytes[start..<bytes.count])
        for (n, line) in lines.enumerated() {
            if n > 0 { out.append(contentsOf: [0x0D, 0x0A]) }
            encodeLine(line, into: &out)
        }
        return out
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func encodeLine(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var column = 0
        let fromPrefix: [UInt8] = Array("From ".utf8)
        let startsWithFrom = line.starts(with: fromPrefix)
        var index = line.startIndex
        while index < line.endIndex {
            let byte = line[index]
            let isLast = index == line.index(before: line.endIndex)
            let atLineStart = index == line.startIndex
            let mustEncode: Bool
            switch byte {
            case 0x3D: mustEncode = true                                  // '='
            case 0x20, 0x09: mustEncode = isLast                          // trailing whitespace
            case 0x2E: mustEncode = atLineStart                           // leading '.'
            case 0x46: mustEncode = atLineStart && startsWithFrom         // "From "
            case 0x21...0x7E: mustEncode = false
            default: mustEncode = true
            }
            let width = mustEncode ? 3 : 1
            // Keep room for the soft break '=' within 76 columns, unless this is the line's last byte.
            let limit = isLast ? 76 : 75
            if column + width > limit {
                out.append(contentsOf: [0x3D, 0x0D, 0x0A])
                column = 0
            }
            if mustEncode {
                out.append(0x3D)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            } else {
                out.append(byte)
            }
            column += width
            index = line.index(after: index)
        }
    }
}
