import Foundation

extension EmailAddress {
    /// Parses an address-list header value (`From`, `To`, `Cc`, `Delivered-To`): display names
    /// (quoted or RFC 2047 encoded), angle addresses, bare addresses, comments and groups.
    /// Entries without an `@` are dropped.
    public static func parseList(_ raw: String) -> [EmailAddress] {
        var result: [EmailAddress] = []
        var phrase = ""
        var angle: String? = nil
        var inQuote = false, inAngle = false
        var commentDepth = 0
        var angleBuf = ""
        func finish() {
            let name = phrase.trimmingCharacters(in: .whitespaces)
            if let a = angle {
                let addr = a.trimmingCharacters(in: .whitespaces)
                if addr.contains("@") {
                    result.append(EmailAddress(stripRoute(addr), displayName: name.isEmpty ? nil : EncodedWords.decode(name)))
                }
            } else {
                let addr = name.replacingOccurrences(of: " ", with: "")
                if addr.contains("@") { result.append(EmailAddress(addr)) }
            }
            phrase = ""; angle = nil; angleBuf = ""
        }
        var it = raw.makeIterator()
        while let c = it.next() {
            if commentDepth > 0 {
                if c == "(" { commentDepth += 1 } else if c == ")" { commentDepth -= 1 } else if c == "\\" { _ = it.next() }
                continue
            }
            if inQuote {
                if c == "\\" { if let n = it.next() { phrase.append(n) } }
                else if c == "\"" { inQuote = false }
                else { phrase.append(c) }
                continue
            }
            if inAngle {
                if c == ">" { inAngle = false; angle = angleBuf } else { angleBuf.append(c) }
                continue
            }
            switch c {
            case "\"": inQuote = true
            case "(": commentDepth = 1
            case "<": inAngle = true; angleBuf = ""
            case ",", ";": finish()
            case ":":
                // group "name: a, b;" — the phrase so far was the group name
                if angle == nil && !phrase.contains("@") { phrase = "" } else { phrase.append(c) }
            default: phrase.append(c)
            }
        }
        if inAngle { angle = angleBuf }
        finish()
        return result
    }

    private static func stripRoute(_ addr: String) -> String {
        // obsolete source route "@a,@b:user@host"
        if addr.hasPrefix("@"), let colon = addr.firstIndex(of: ":") { return String(addr[addr.index(after: colon)...]) }
        return addr
    }
}
