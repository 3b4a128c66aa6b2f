import Foundation

/// Recognises mail no human typed, from headers and MIME structure only (no body is read,
/// except the header section of a bounced message to find its Message-ID).
public enum AutomaticMailDetector {
    /// What the detector found.
    public enum Verdict: Sendable, Hashable {
        /// Automatic mail (auto-reply, list, receipt, reaction…): archived, never decides.
        case automatic(reason: String)
        /// A delivery failure report; `originalMessageID` is the failed mail's Message-ID
        /// (without angle brackets) when the report includes it.
        case bounce(reason: String, originalMessageID: String?)
    }

    /// Nil for mail that may be a human reply.
    public static func classify(_ message: MIMEMessage) -> Verdict? {
        classify(message, fromAddresses: EmailAddress.parseList(message.headers.first("From") ?? ""))
    }

    /// `classify(_:)` with the first `From` value already parsed (`EmailAddress.parseList` of
    /// it, or of "" when there is none): the classifier parses it once for all its checks.
    static func classify(_ message: MIMEMessage, fromAddresses: [EmailAddress]) -> Verdict? {
        let h = message.headers
        let root = message.root
        let fromLocal = fromAddresses.first?.localPart.lowercased() ?? ""
        let fromDaemon = ["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"].contains(fromLocal)
        let isReport = root.mimeType == "multipart/report"
        let reportType = root.contentType["report-type"]?.lowercased()
        let hasDeliveryStatus = anyPart(root) { $0.mimeType == "message/delivery-status" || $0.mimeType == "message/global-delivery-status" }

        if (isReport && (reportType == "delivery-status" || hasDeliveryStatus)) || (fromDaemon && !isDispositionNotification(root, reportType)) {
            let reason = isReport ? "delivery status report (multipart/report)" : "from \(fromAddresses.first?.address ?? fromLocal)"
            return .bounce(reason: "bounce: \(reason)", originalMessageID: originalMessageID(root.allParts()))
        }
        if isReport || isDispositionNotification(root, reportType) {
            return .automatic(reason: reportType == "disposition-notification" || anyPart(root, { $0.mimeType == "message/disposition-notification" })
                              ? "read receipt (disposition-notification)" : "multipart/report (\(reportType ?? "unknown type"))")
        }
        if let rp = h.first("Return-Path"), isNullSender(rp) {
            return .automatic(reason: "Return-Path is <> (null sender)")
        }
        if let a = h.first("Auto-Submitted") {
            let v = MIMEHeaderValue.parse(a).value
            if v != "no" { return .automatic(reason: "Auto-Submitted: \(v)") }
        }
        for name in ["X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder"] where h.contains(name) {
            return .automatic(reason: "\(name) header present")
        }
        if let p = h.first("Precedence")?.trimmingCharacters(in: .whitespaces).lowercased(),
           ["bulk", "junk", "list", "auto_reply", "auto-reply"].contains(p) {
            return .automatic(reason: "Precedence: \(p)")
        }
        if h.contains("List-Id") { return .automatic(reason: "List-Id header present (mailing list)") }
        if let sub = h.decoded("Subject"), let phrase = outOfOfficePhrase(sub) {
            return .automatic(reason: "out-of-office subject (\"\(phrase)\")")
        }
        if anyPart(root, { $0.mimeType == "text/vnd.google.email-reaction+json" }) {
            return .automatic(reason: "Gmail emoji reaction")
        }
        return nil
    }

    /// `rp.replacingOccurrences(of: " ", with: "") == "<>"` (for ASCII, on bytes).
    static func isNullSender(_ rp: String) -> Bool {
        var copy = rp
        let fast = copy.withUTF8 { u -> Bool? in
            var seen: [UInt8] = []
            for b in u {
                if b >= 0x80 { return nil }
                if b == 0x20 { continue }
                seen.append(b)
                if seen.count > 2 { return false }
            }
            return seen == [0x3C, 0x3E]
        }
        if let fast { return fast }
        return rp.replacingOccurrences(of: " ", with: "") == "<>"
    }

    private static func isDispositionNotification(_ root: MIMEMessage.Part, _ reportType: String?) -> Bool {
        reportType == "disposition-notification" || anyPart(root) { $0.mimeType == "message/disposition-notification" }
    }

    /// `root.allParts().contains(where: test)`, walking the tree in place (no copies of parts).
    static func anyPart(_ part: MIMEMessage.Part, _ test: (MIMEMessage.Part) -> Bool) -> Bool {
        if test(part) { return true }
        for child in part.children where anyPart(child, test) { return true }
        return false
    }

    /// The Message-ID of the returned message, read from the header section of the
    /// `message/rfc822` or `text/rfc822-headers` part (its body is never parsed).
    static func originalMessageID(_ parts: [MIMEMessage.Part]) -> String? {
        for p in parts where ["message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers"].contains(p.mimeType) {
            let inner = MIMEMessage.parseHeaders(p.decodedBody()[...])
            if let id = inner.first("Message-ID") { return MessageID.normalize(id) }
        }
        return nil
    }

    static let outOfOfficePatterns: [String] = [
        // English
        "out of office", "out of the office", "out-of-office", "automatic reply", "auto reply", "auto-reply", "autoreply",
        "away from the office", "on vacation", "on holiday", "on leave", "vacation reply", "away message",
        // German
        "abwesenheitsnotiz", "automatische antwort", "abwesend", "nicht im büro", "außer haus", "ausser haus", "urlaub",
        // French
        "absence du bureau", "réponse automatique", "reponse automatique", "absent du bureau", "en congé", "en conge", "hors du bureau", "message d'absence",
        // Spanish
        "fuera de la oficina", "respuesta automática", "respuesta automatica", "ausente", "de vacaciones", "fuera de oficina",
        // Italian, Dutch, Portuguese
        "fuori sede", "risposta automatica", "fuori ufficio", "afwezig", "automatisch antwoord", "resposta automática", "ausência",
    ]

    /// The out-of-office phrase that starts `subject`, if any. Only the start counts: a human
    /// reply starts with "Re:", and a request about vacations must not look automatic.
    public static func outOfOfficePhrase(_ subject: String) -> String? {
        var s = TextFast.trimWhitespaces(subject.lowercased())
        while s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            s = String(s[s.index(after: close)...]).trimmingCharacters(in: .whitespaces)
        }
        if s.hasPrefix("auto:") { return "auto:" }
        // Every pattern starts with an ASCII letter, a Character no other Character equals: when
        // `s` starts with an ASCII byte, only the patterns starting with that byte can match.
        guard let first = s.utf8.first, first < 0x80 else { return outOfOfficePatterns.first { s.hasPrefix($0) } }
        return outOfOfficePatterns.first { $0.utf8.first == first && s.hasPrefix($0) }
    }
}

/// Message-ID helpers.
public enum MessageID {
    /// `<abc@host>` → `abc@host` (trimmed, first id only).
    public static func normalize(_ raw: String) -> String {
        if let first = firstASCII(raw) { return first }
        let ids = all(raw)
        return ids.first ?? raw.trimmingCharacters(in: CharacterSet(charactersIn: " \t<>"))
    }

    /// `all(raw).first` for ASCII text, without collecting the others: the first non-empty
    /// `<id>` (trimmed). Nil when the text is not ASCII or holds no such id.
    static func firstASCII(_ raw: String) -> String? {
        guard TextFast.isASCII(raw) else { return nil }
        var copy = raw
        return copy.withUTF8 { u -> String? in
            var i = 0
            while let open = u[i...].firstIndex(of: 0x3C), let close = u[open...].firstIndex(of: 0x3E) {
                let id = TextFast.trimWhitespaces(String(decoding: UnsafeBufferPointer(rebasing: u[(open + 1)..<close]), as: UTF8.self))
                if !id.isEmpty { return id }
                i = close + 1
            }
            return nil
        }
    }

    /// Every `<id>` in a References / In-Reply-To value, without brackets.
    public static func all(_ raw: String) -> [String] {
        var ids: [String] = []
        if TextFast.isASCII(raw) {
            // Bytes: in ASCII text every character is one byte (CR LF aside, never `<` or `>`).
            var copy = raw
            copy.withUTF8 { u in
                var i = 0
                while let open = u[i...].firstIndex(of: 0x3C), let close = u[open...].firstIndex(of: 0x3E) {
                    let id = TextFast.trimWhitespaces(String(decoding: UnsafeBufferPointer(rebasing: u[(open + 1)..<close]), as: UTF8.self))
                    if !id.isEmpty { ids.append(id) }
                    i = close + 1
                }
            }
            if !ids.isEmpty { return ids }
        }
        var rest = Substring(raw)
        while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">") {
            let id = TextFast.trimWhitespaces(String(rest[rest.index(after: open)..<close]))
            if !id.isEmpty { ids.append(id) }
            rest = rest[rest.index(after: close)...]
        }
        if ids.isEmpty {
            ids = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init).filter { $0.contains("@") }
        }
        return ids
    }
}
