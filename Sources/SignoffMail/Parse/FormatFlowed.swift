/// RFC 3676 `format=flowed`: joins soft-broken lines back into paragraphs.
public enum FormatFlowed {
    /// Unwraps flowed text (LF line ends). With `delSp`, the space before a soft break is
    /// removed. Quote depth is kept; lines of different depth are never joined; the signature
    /// separator `-- ` is never a soft break.
    public static func unwrap(_ text: String, delSp: Bool) -> String {
        var out: [String] = []
        var paragraph: String? = nil
        var paragraphDepth = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = Substring(raw)
            var depth = 0
            while line.first == ">" { depth += 1; line = line.dropFirst() }
            if line.first == " " { line = line.dropFirst() }   // space-stuffing (or the space after '>')
            let isSignature = line == "-- "
            let flowed = !isSignature && line.last == " "
            if var p = paragraph {
                if depth == paragraphDepth {
                    p += line
                    paragraph = p
                } else {
                    out.append(prefix(paragraphDepth) + p)
                    paragraph = String(line)
                    paragraphDepth = depth
                }
            } else {
                paragraph = String(line)
                paragraphDepth = depth
            }
            if flowed {
                if delSp { paragraph!.removeLast() }
            } else {
                out.append(prefix(paragraphDepth) + paragraph!)
                paragraph = nil
            }
        }
        if let p = paragraph { out.append(prefix(paragraphDepth) + p) }
        return out.joined(separator: "\n")
    }

    private static func prefix(_ depth: Int) -> String {
        depth == 0 ? "" : String(repeating: ">", count: depth) + " "
    }
}
