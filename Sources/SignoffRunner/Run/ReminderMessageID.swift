import Crypto
import Foundation
import SignoffMail

/// Message-IDs of scheduled reminders, derived from the reply token's hash, so the importer can
/// count a reply to a reminder as being in the request's thread even when the reviewer's client
/// sends only `In-Reply-To: <reminder>` (no `References` chain) — without storing anything new.
/// `<r2.<16 hex of sha256(token hash)>@domain>`: unique per token and round, and it reveals
/// nothing about the token.
enum ReminderMessageID {
    static func make(tokenHash: String, round: Int, requestMessageID: String) -> String {
        "<r\(round).\(digest(tokenHash))@\(domain(requestMessageID))>"
    }

    /// Every reminder Message-ID a token's mail may have had (`rounds` rounds), without brackets.
    /// (The importer asks for every reply: the digest and domain are computed once.)
    static func all(tokenHash: String, rounds: Int, requestMessageID: String) -> [String] {
        guard rounds > 0 else { return [] }
        let digest = digest(tokenHash), domain = domain(requestMessageID)
        // A plain domain (ours always is) normalizes to itself: the id is built as normalized.
        if domain.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }) {
            return (1...rounds).map { "r\($0)." + digest + "@" + domain }
        }
        return (1...rounds).map { MessageID.normalize("<r\($0).\(digest)@\(domain)>") }
    }

    /// 16 lower-case hex digits of SHA-256 of the token hash.
    private static func digest(_ tokenHash: String) -> String {
        var hash = tokenHash
        let digest = hash.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return digest.withUnsafeBytes { MailMessage.lowerHex(UnsafeRawBufferPointer(rebasing: $0.prefix(8))) }
    }

    private static func domain(_ requestMessageID: String) -> String {
        let normalized = MessageID.normalize(requestMessageID)
        // What follows the last "@" (the last non-empty piece between "@"s, as `split` gives it).
        let utf8 = normalized.utf8
        if let at = utf8.lastIndex(of: UInt8(ascii: "@")), utf8.index(after: at) != utf8.endIndex {
            return String(normalized[utf8.index(after: at)...])
        }
        return normalized.split(separator: "@").last.map(String.init) ?? "signoff.invalid"
    }
}
