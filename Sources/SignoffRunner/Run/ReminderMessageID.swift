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
        let digest = SHA256.hash(data: Data(tokenHash.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        let id = MessageID.normalize(requestMessageID)
        let domain = id.split(separator: "@").last.map(String.init) ?? "signoff.invalid"
        return "<r\(round).\(digest)@\(domain)>"
    }

    /// Every reminder Message-ID a token's mail may have had (`rounds` rounds), without brackets.
    static func all(tokenHash: String, rounds: Int, requestMessageID: String) -> [String] {
        guard rounds > 0 else { return [] }
        return (1...rounds).map { MessageID.normalize(make(tokenHash: tokenHash, round: $0, requestMessageID: requestMessageID)) }
    }
}
