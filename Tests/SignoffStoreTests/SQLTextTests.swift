import Foundation
import Testing
@testable import SignoffStore

/// Text parameters and text columns come back exactly as bound, on both backends: empty, short
/// (stored inline by Swift), long, multi-byte UTF-8; a NUL character ends the text, as a C string
/// would (PostgreSQL text cannot hold one, so SQLite keeps the same rule).
struct SQLTextTests {
    @Test(arguments: Backend.allCases)
    func textParametersRoundTripAndEndAtANulCharacter(_ backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        defer { Task { await db.drop() } }
        let raw = try db.rawConnection("test.text")
        defer { Task { await raw.close() } }
        let long = String(repeating: "approve-", count: 300)
        let cases: [(sent: String, stored: String)] = [
            ("", ""),
            ("a", "a"),
            ("fifteen chars!!", "fifteen chars!!"),
            ("sixteen chars!!!", "sixteen chars!!!"),
            ("Grüße, 承認 ✅ — ok", "Grüße, 承認 ✅ — ok"),
            (long, long),
            ("before\u{0}after", "before"),
            ("\u{0}hidden", ""),
            ("tab\tnew\nline \"quoted\" \\ back", "tab\tnew\nline \"quoted\" \\ back"),
        ]
        let back = try await raw.perform { conn -> [String?] in
            try conn.query("CREATE TABLE text_probe (n integer PRIMARY KEY, t text)", [])
            for (i, c) in cases.enumerated() {
                try conn.query("INSERT INTO text_probe (n, t) VALUES ($1, $2)", [.int(Int64(i)), .text(c.sent)])
            }
            return try conn.query("SELECT t FROM text_probe ORDER BY n", []).map { $0.string(0) }
        }
        #expect(back == cases.map(\.stored))
        // Parameters compare the same way they are stored.
        let found = try await raw.perform { conn in
            try conn.query("SELECT n FROM text_probe WHERE t = $1", [.text("before\u{0}ignored")]).compactMap { $0.int(0) }
        }
        #expect(found == [6])
    }
}
