import Foundation
import Testing
@testable import SignoffStore

/// The import's token lookups read the last commit and never wait for a write in progress (on
/// SQLite they have a connection of their own beside the writer).
struct TokenLookupConcurrencyTests {
    @Test(arguments: Backend.allCases)
    func tokenLookupsReadTheLastCommitWhileAnotherWriteIsOpen(_ backend: Backend) async throws {
        try await withStore(backend) { store, db in
            let (run, _) = try await pausedRun(store, requests: [makeRequest("look-1")])
            let hash = tokenHash("ann@example.org", "look-1")
            let other = try db.rawConnection("test.other-writer", busyMilliseconds: 100)
            defer { Task { await other.close() } }
            // Another writer marks the token used and keeps its transaction open.
            try await other.perform { conn in
                try conn.begin(write: true)
                try conn.query("UPDATE request_tokens SET state = 'used' WHERE token_hash = $1", [.text(hash)])
            }
            let started = Date()
            let during = try await store.tokenLookups(tokenHashes: [hash])
            #expect(Date().timeIntervalSince(started) < 5, "the lookup waited for the open write")
            #expect(during[hash]?.token.state == .active)
            #expect(during[hash]?.request.id == "look-1" && during[hash]?.run?.id == run.id)
            try await other.perform { conn in try conn.commit() }
            let after = try await store.tokenLookups(tokenHashes: [hash])
            #expect(after[hash]?.token.state == .used)
        }
    }
}
