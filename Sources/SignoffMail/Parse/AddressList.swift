import Foundation

extension EmailAddress {
    /// Parses an address-list header value (`From`, `To`, `Cc`, `Delivered-To`): display names
    /// (quoted or RFC 2047 encoded), angle addresses, bare addresses, comments and groups.
    /// Entries without an `@` are dropped.
    public static func parseList(_ raw: String) -> [EmailAddress] {
        if TextFast.isASCII(raw) { return parseListASCII(raw) }
        return parseListCharacters(raw)
    }

    /// `parseList` on Characters (any text; the definition the ASCII path follows).
    static func parseListCharacters(_ raw: String) -> [EmailAddress] {
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
    /// one character in Swift, is never a delimiter, so the result is the same). The phrase and
    /// the angle address are gathered in one temporary buffer (stack for short values); in ASCII
    /// text trimming `.whitespaces` is trimming spaces and tabs, done on the bytes.
    static func parseListASCII(_ raw: String) -> [EmailAddress] {
        // The state lives in a struct with a mutating `finish` (no captured variables, so no
        // dynamic exclusivity checks on every byte). The angle text is kept in `angleBuf`: it is
        // only replaced by a new `<`, and every `<` is closed by `>` or by the end of the value
        // before the next `finish`.
        struct State {
            var result: [EmailAddress] = []
            let phrase: UnsafeMutableBufferPointer<UInt8>
            let angleBuf: UnsafeMutableBufferPointer<UInt8>
            var phraseCount = 0
            var angleCount = 0
            var hasAngle = false

            @inline(__always) static func trimmed(_ b: UnsafeMutableBufferPointer<UInt8>, _ count: Int) -> UnsafeBufferPointer<UInt8> {
                var s = 0, e = count
                while s < e, b[s] == 0x20 || b[s] == 0x09 { s += 1 }
                while e > s, b[e - 1] == 0x20 || b[e - 1] == 0x09 { e -= 1 }
                return UnsafeBufferPointer(rebasing: b[s..<e])
            }

            mutating func finish() {
                let nameBytes = State.trimmed(phrase, phraseCount)
                if hasAngle {
                    let addrBytes = State.trimmed(angleBuf, angleCount)
                    if addrBytes.contains(0x40) {
                        let addr = String(decoding: addrBytes, as: UTF8.self)
                        let name = String(decoding: nameBytes, as: UTF8.self)
                        result.append(EmailAddress.make(EmailAddress.stripRoute(addr), displayName: name.isEmpty ? nil : EncodedWords.decode(name)))
                    }
                } else if UnsafeBufferPointer(rebasing: phrase[0..<phraseCount]).contains(0x40) {
                    let compact = nameBytes.filter { $0 != 0x20 }
                    result.append(EmailAddress.make(String(decoding: compact, as: UTF8.self), displayName: nil))
                }
                phraseCount = 0; hasAngle = false; angleCount = 0
            }
            @inline(__always) mutating func appendPhrase(_ c: UInt8) { phrase[phraseCount] = c; phraseCount += 1 }
        }
        var copy = raw
        return copy.withUTF8 { u in
            let n = u.count
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * n + 2) { scratch in
                var st = State(phrase: UnsafeMutableBufferPointer(rebasing: scratch[0..<(n + 1)]),
                               angleBuf: UnsafeMutableBufferPointer(rebasing: scratch[(n + 1)...]))
                var inQuote = false, inAngle = false
                var commentDepth = 0
                var i = 0
                while i < n {
                    let c = u[i]
                    i += 1
                    if commentDepth > 0 {
                        if c == 0x28 { commentDepth += 1 } else if c == 0x29 { commentDepth -= 1 } else if c == 0x5C { i += 1 }
                        continue
                    }
                    if inQuote {
                        if c == 0x5C { if i < n { st.appendPhrase(u[i]); i += 1 } }
                        else if c == 0x22 { inQuote = false }
                        else { st.appendPhrase(c) }
                        continue
                    }
                    if inAngle {
                        if c == 0x3E { inAngle = false; st.hasAngle = true } else { st.angleBuf[st.angleCount] = c; st.angleCount += 1 }
                        continue
                    }
                    switch c {
                    case 0x22: inQuote = true
                    case 0x28: commentDepth = 1
                    case 0x3C: inAngle = true; st.angleCount = 0
                    case 0x2C, 0x3B: st.finish()
                    case 0x3A:
                        if !st.hasAngle && !UnsafeBufferPointer(rebasing: st.phrase[0..<st.phraseCount]).contains(0x40) { st.phraseCount = 0 } else { st.appendPhrase(c) }
                    default: st.appendPhrase(c)
                    }
                }
                if inAngle { st.hasAngle = true }
                st.finish()
                return st.result
            }
        }
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
