import Foundation

extension EmailAddress {
    /// Parses an address-list header value (`From`, `To`, `Cc`, `Delivered-To`): display names
    /// (quoted or RFC 2047 encoded), angle addresses, bare addresses, comments and groups.
    /// Entries without an `@` are dropped.
    public static func parseList(_ raw: String) -> [EmailAddress] {
        if TextFast.isASCII(raw) { return parseListASCII(raw) }
        var result: [EmailAddress] = []
        var phrase = ""
        var angle: String? = nil
        var inQuote = false, inAngle = false
        var commentDepth = 0
        var angleBuf = ""
        func finish() {
            let name = TextFast.trimWhitespaces(phrase)
            if let a = angle {
                let addr = TextFast.trimWhitespaces(a)
                if addr.contains("@") {
                    result.append(EmailAddress.make(EmailAddress.stripRoute(addr), displayName: name.isEmpty ? nil : EncodedWords.decode(name)))
                }
            } else {
                let addr = name.replacingOccurrences(of: " ", with: "")
                if addr.contains("@") { result.append(make(addr, displayName: nil)) }
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

    /// `parseList` for ASCII text, on bytes (each ASCII byte is one character; a CR LF pair,
    /// one character in Swift, is never a delimiter, so the result is the same).
    private static func parseListASCII(_ raw: String) -> [EmailAddress] {
        // The state lives in a struct with a mutating `finish` (no captured variables, so no
        // dynamic exclusivity checks on every byte).
        struct State {
            var result: [EmailAddress] = []
            var phrase: [UInt8] = []
            var angle: [UInt8]? = nil
            var angleBuf: [UInt8] = []
            mutating func finish() {
                let name = TextFast.trimWhitespaces(String(decoding: phrase, as: UTF8.self))
                if let a = angle {
                    let addr = TextFast.trimWhitespaces(String(decoding: a, as: UTF8.self))
                    if addr.utf8.contains(0x40) {
                        result.append(EmailAddress.make(EmailAddress.stripRoute(addr), displayName: name.isEmpty ? nil : EncodedWords.decode(name)))
                    }
                } else if phrase.contains(0x40) {
                    result.append(EmailAddress.make(String(decoding: name.utf8.filter { $0 != 0x20 }, as: UTF8.self), displayName: nil))
                }
                phrase.removeAll(keepingCapacity: true); angle = nil; angleBuf.removeAll(keepingCapacity: true)
            }
        }
        var st = State()
        st.phrase.reserveCapacity(raw.utf8.count)
        st.angleBuf.reserveCapacity(raw.utf8.count)
        var inQuote = false, inAngle = false
        var commentDepth = 0
        var copy = raw
        copy.withUTF8 { u in
            var i = 0
            while i < u.count {
                let c = u[i]
                i += 1
                if commentDepth > 0 {
                    if c == 0x28 { commentDepth += 1 } else if c == 0x29 { commentDepth -= 1 } else if c == 0x5C { i += 1 }
                    continue
                }
                if inQuote {
                    if c == 0x5C { if i < u.count { st.phrase.append(u[i]); i += 1 } }
                    else if c == 0x22 { inQuote = false }
                    else { st.phrase.append(c) }
                    continue
                }
                if inAngle {
                    if c == 0x3E { inAngle = false; st.angle = st.angleBuf } else { st.angleBuf.append(c) }
                    continue
                }
                switch c {
                case 0x22: inQuote = true
                case 0x28: commentDepth = 1
                case 0x3C: inAngle = true; st.angleBuf.removeAll(keepingCapacity: true)
                case 0x2C, 0x3B: st.finish()
                case 0x3A:
                    if st.angle == nil && !st.phrase.contains(0x40) { st.phrase.removeAll(keepingCapacity: true) } else { st.phrase.append(c) }
                default: st.phrase.append(c)
                }
            }
        }
        if inAngle { st.angle = st.angleBuf }
        st.finish()
        return st.result
    }

    /// `EmailAddress(address, displayName:)` without Foundation's trimming (the same set,
    /// trimmed natively by `TextFast.trimWhitespaces`).
    @inline(__always)
    fileprivate static func make(_ address: String, displayName: String?) -> EmailAddress {
        var a = blank
        a.address = TextFast.trimWhitespaces(address)
        a.displayName = displayName
        return a
    }

    /// A value to copy and fill in (the initializer trims with Foundation, slow on this path).
    private static let blank = EmailAddress("")

    fileprivate static func stripRoute(_ addr: String) -> String {
        // obsolete source route "@a,@b:user@host"
        if addr.hasPrefix("@"), let colon = addr.firstIndex(of: ":") { return String(addr[addr.index(after: colon)...]) }
        return addr
    }
}
