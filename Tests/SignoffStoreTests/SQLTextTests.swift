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

    /// A multi-row write binds its rows where they are (SQLite copies every bound text and blob
    /// into one buffer per connection): values far larger than that buffer, blobs, NULLs and the
    /// small values of the next statement all come back as bound.
    @Test(arguments: Backend.allCases)
    func rowsOfLargeAndSmallValuesRoundTrip(_ backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        defer { Task { await db.drop() } }
        let raw = try db.rawConnection("test.rows")
        defer { Task { await raw.close() } }
        let blobType = backend == .postgres ? "bytea" : "BLOB"
        let big = String(repeating: "Grüße ✅ ", count: 20_000)
        let bytes = Data((0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let first: [[SQLValue]] = [[.int(1), .text("small"), .blob(Data([1, 2, 3]))],
                                   [.int(2), .text(big), .blob(bytes)],
                                   [.int(3), .null, .null]]
        let second: [[SQLValue]] = [[.int(4), .text("after"), .blob(Data([0]))]]
        let back = try await raw.perform { conn -> [SQLRow] in
            try conn.query("CREATE TABLE rows_probe (n integer PRIMARY KEY, t text, b \(blobType))", [])
            try conn.query(SQLStatement("INSERT INTO rows_probe (n, t, b) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)", rows: first[...]))
            try conn.query(SQLStatement("INSERT INTO rows_probe (n, t, b) VALUES ($1, $2, $3)", rows: second[...]))
            return try conn.query("SELECT n, t, b FROM rows_probe ORDER BY n", [])
        }
        #expect(back.map { $0.int(0) } == [1, 2, 3, 4])
        #expect(back.map { $0.string(1) } == ["small", big, nil, "after"])
        #expect(back.map { $0.data(2) } == [Data([1, 2, 3]), bytes, nil, Data([0])])
    }

    /// The SQLite bind buffer grows to a large statement's values and gives the memory back once
    /// statements are small again (a connection does not keep a big checkpoint's size for life);
    /// every value still comes back as bound across the grow and the shrink.
    @Test func theBindBufferShrinksAfterALargeStatement() async throws {
        let db = try await TestDatabase.make(.sqlite)
        defer { Task { await db.drop() } }
        let raw = try db.rawConnection("test.arena")
        defer { Task { await raw.close() } }
        let huge = String(repeating: "0123456789abcdef", count: (BindArena.kept * 2) / 16)
        let back = try await raw.perform { conn -> [SQLRow] in
            try conn.query("CREATE TABLE arena_probe (n integer PRIMARY KEY, t text)", [])
            try conn.query("INSERT INTO arena_probe (n, t) VALUES ($1, $2)", [.int(1), .text(huge)])
            try conn.query("INSERT INTO arena_probe (n, t) VALUES ($1, $2)", [.int(2), .text("small")])
            return try conn.query("SELECT n, t FROM arena_probe ORDER BY n", [])
        }
        #expect(back.map { $0.string(1) } == [huge, "small"])

        let arena = BindArena()
        _ = arena.reserve(huge.utf8.count)
        #expect(arena.capacity >= huge.utf8.count)
        _ = arena.reserve(100)
        #expect(arena.capacity == BindArena.kept)
        _ = arena.reserve(BindArena.kept - 1)
        #expect(arena.capacity == BindArena.kept)
    }

    /// SQLite caches prepared statements by a key hashed from a text's length and ends: two texts
    /// alike in both, differing only in the middle, are still two statements.
    @Test func statementsAlikeInLengthAndEndsAreCachedApart() async throws {
        let db = try await TestDatabase.make(.sqlite)
        defer { Task { await db.drop() } }
        let raw = try db.rawConnection("test.cache")
        defer { Task { await raw.close() } }
        let pad = String(repeating: " ", count: 40)
        let one = "SELECT" + pad + "1 AS v" + pad, two = "SELECT" + pad + "2 AS v" + pad
        #expect(StatementKey(one).hashValue == StatementKey(two).hashValue)
        let values = try await raw.perform { conn in
            try [one, two, one, two].map { try conn.query($0, []).first?.int(0) }
        }
        #expect(values == [1, 2, 1, 2])
    }
}

