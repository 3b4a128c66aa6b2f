import Foundation
import Testing
@testable import SignoffMail

/// `EmailAddress` keeps an address without surrounding whitespace; its shortcut for addresses
/// that start and end with a visible ASCII byte must trim exactly as Foundation does.
struct EmailAddressTrimTests {
    @Test func theShortcutTrimsExactlyAsFoundation() {
        let edges = ["", " ", "\t", "\u{A0}", "\u{2003}", "\n", "\r\n", "\u{7F}", "\u{1}", "é", "x", "@", "<", "\u{3000}"]
        let middles = ["", "a", "ann@example.org", "a b", "ann\t@x", "ü@example.org", "\u{A0}", " "]
        for lead in edges {
            for middle in middles {
                for trail in edges {
                    let text = lead + middle + trail
                    #expect(EmailAddress.trimmed(text) == text.trimmingCharacters(in: .whitespaces), "\(Array(text.unicodeScalars))")
                }
            }
        }
        #expect(EmailAddress("  ann@example.org\t").address == "ann@example.org")
    }
}
