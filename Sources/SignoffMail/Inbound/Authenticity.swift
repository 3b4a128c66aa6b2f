import Foundation

/// Who sent a reply and for which token: the rules of EMAIL.md "Tokens" and "Who may answer".
public enum Authenticity {
    /// The request token a reply is addressed to: the sub-address of our reply address in the
    /// topmost `Delivered-To` / `X-Original-To`, else in `To`, else in `Cc`. Lower-cased.
    public static func token(in headers: MIMEHeaders, replyAddress: EmailAddress) -> String? {
        token(in: headers, key: ReplyKey(replyAddress))
    }

    /// The parts of the reply address a token address is compared with: the local part before
    /// any `+`, lower-cased, and the IDNA-lowered domain. Computed once per reply address.
    struct ReplyKey: Sendable, Hashable {
        let base: String
        let domain: String
        init(_ replyAddress: EmailAddress) {
            base = replyAddress.localPart.split(separator: "+", maxSplits: 1).first.map(String.init)?.lowercased() ?? ""
            domain = IDNA.asciiLowercased(replyAddress.domain)
        }
    }

    /// `token(in:replyAddress:)` with the reply address's key already computed.
    static func token(in headers: MIMEHeaders, key: ReplyKey) -> String? {
        let base = key.base
        let domain = key.domain
        func tokenOf(_ a: EmailAddress) -> String? {
            if let fast = asciiToken(a.address, base: base, domain: domain) { return fast }
            let local = a.localPart.lowercased()
            guard let plus = local.firstIndex(of: "+"), String(local[..<plus]) == base,
                  IDNA.asciiLowercased(a.domain) == domain, let tag = a.subaddress?.lowercased(), !tag.isEmpty else { return nil }
            return tag
        }
        // The topmost trace header (the one our own MTA added last) wins.
        if let trace = headers.fields.first(where: {
            TextFast.asciiEqualsIgnoringCase($0.name, "Delivered-To") || TextFast.asciiEqualsIgnoringCase($0.name, "X-Original-To")
        }) {
            if let t = EmailAddress.parseList(trace.value).lazy.compactMap(tokenOf).first { return t }
        }
        for name in ["To", "Cc"] {
            for value in headers.all(name) {
                if let t = EmailAddress.parseList(value).lazy.compactMap(tokenOf).first { return t }
            }
        }
        return nil
    }

    /// `tokenOf` for an all-ASCII address, on bytes: `.some(token or nil)`; nil when the
    /// address is not ASCII (the general path decides). For ASCII, `localPart`, `domain`,
    /// `subaddress`, `lowercased()` and `IDNA.asciiLowercased` are plain byte operations.
    private static func asciiToken(_ address: String, base: String, domain: String) -> String?? {
        var copy = address
        return copy.withUTF8 { u -> String?? in
            var at = -1
            for (k, b) in u.enumerated() {
                if b >= 0x80 { return nil }
                if b == 0x40 { at = k }
            }
            let localEnd = at >= 0 ? at : u.count
            guard let plus = u[0..<localEnd].firstIndex(of: 0x2B) else { return .some(nil) }
            @inline(__always) func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
            func equalsLowered(_ from: Int, _ to: Int, _ s: String) -> Bool {
                let v = s.utf8
                guard v.count == to - from else { return false }
                var k = from
                for c in v { if lower(u[k]) != c { return false }; k += 1 }
                return true
            }
            guard equalsLowered(0, plus, base) else { return .some(nil) }
            var domainStart = at >= 0 ? at + 1 : u.count
            var domainEnd = u.count
            if domainEnd > domainStart, u[domainEnd - 1] == 0x2E { domainEnd -= 1 }
            if at < 0 { domainStart = u.count; domainEnd = u.count }
            guard equalsLowered(domainStart, domainEnd, domain) else { return .some(nil) }
            guard plus + 1 < localEnd else { return .some(nil) }
            let start = plus + 1
            return .some(String(unsafeUninitializedCapacity: localEnd - start) { out in
                for k in start..<localEnd { out[k - start] = lower(u[k]) }
                return localEnd - start
            })
        }
    }

    /// Nil when the message has exactly one `From` address equal to `reviewer`; otherwise the
    /// reason it does not.
    public static func senderProblem(_ headers: MIMEHeaders, reviewer: EmailAddress) -> String? {
        let fromValues = headers.all("From")
        return senderProblem(fromValues: fromValues, firstParsed: fromValues.count == 1 ? EmailAddress.parseList(fromValues[0]) : [], reviewer: reviewer)
    }

    /// `senderProblem(_:reviewer:)` from the `From` values and `EmailAddress.parseList` of the
    /// first one (read when there is exactly one).
    static func senderProblem(fromValues: [String], firstParsed from: [EmailAddress], reviewer: EmailAddress) -> String? {
        guard fromValues.count == 1 else { return fromValues.isEmpty ? "the message has no From header" : "the message has \(fromValues.count) From headers" }
        guard from.count == 1, let sender = from.first else { return "From must name exactly one address (found \(from.count))" }
        if IDNA.comparable(sender) != IDNA.comparable(reviewer) {
            return "the reply comes from \(sender.address), but the request was sent to \(reviewer.address)"
        }
        return nil
    }

    /// The single From address, if there is exactly one.
    public static func fromAddress(_ headers: MIMEHeaders) -> EmailAddress? {
        let from = headers.all("From").flatMap { EmailAddress.parseList($0) }
        return from.count == 1 ? from[0] : nil
    }

    /// `fromAddress(_:)` from the `From` values and `EmailAddress.parseList` of the first one
    /// (read when there is exactly one value).
    static func fromAddress(fromValues: [String], firstParsed: [EmailAddress]) -> EmailAddress? {
        let from = fromValues.count == 1 ? firstParsed : fromValues.flatMap { EmailAddress.parseList($0) }
        return from.count == 1 ? from[0] : nil
    }

    /// Strict mode: nil when the topmost `Authentication-Results` header from `authservID` shows
    /// `dmarc=pass`, or `dkim=pass` for a domain aligned with the From domain. Headers from any
    /// other authserv-id are ignored (anyone can write them), and so are lower ones with our id:
    /// our MTA adds its header on top, so a forged copy inside the message sits below it.
    public static func strictProblem(_ headers: MIMEHeaders, authservID: String) -> String? {
        guard let from = fromAddress(headers) else { return "no single From address to authenticate" }
        let fromDomain = IDNA.asciiLowercased(from.domain)
        var ours = 0
        for value in headers.all("Authentication-Results") where ours == 0 {
            let cleaned = stripComments(value)
            let sections = cleaned.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard let idPart = sections.first?.split(separator: " ").first,
                  IDNA.asciiLowercased(String(idPart)) == IDNA.asciiLowercased(authservID) else { continue }
            ours += 1
            for section in sections.dropFirst() {
                let tokens = section.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map { $0.lowercased() }
                guard let result = tokens.first else { continue }
                if result == "dmarc=pass" { return nil }
                if result == "dkim=pass" {
                    for t in tokens.dropFirst() where t.hasPrefix("header.d=") || t.hasPrefix("header.i=") {
                        var d = String(t.split(separator: "=", maxSplits: 1).last ?? "")
                        if let at = d.lastIndex(of: "@") { d = String(d[d.index(after: at)...]) }
                        d = IDNA.asciiLowercased(d)
                        guard d.contains(".") else { continue }
                        if d == fromDomain || fromDomain.hasSuffix("." + d) || d.hasSuffix("." + fromDomain) { return nil }
                    }
                }
            }
        }
        if ours == 0 { return "no Authentication-Results header from \(authservID) (strict mode requires dmarc=pass)" }
        return "Authentication-Results from \(authservID) show neither dmarc=pass nor an aligned dkim=pass for \(fromDomain)"
    }

    private static func stripComments(_ s: String) -> String {
        var out = ""
        var depth = 0
        for c in s {
            if c == "(" { depth += 1; continue }
            if c == ")" { depth = max(0, depth - 1); continue }
            if depth == 0 { out.append(c) }
        }
        return out
    }
}
