import Foundation
import Testing
@testable import SignoffMail

struct MaildirTests {
    private func makeMaildir() throws -> Maildir {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-maildir-\(UUID().uuidString)")
        let m = Maildir(root: root)
        try m.create()
        return m
    }

    private func files(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test func claimMovesNewToCurAndASecondClaimLosesQuietly() throws {
        let m = try makeMaildir()
        defer { try? FileManager.default.removeItem(at: m.root) }
        let name = try m.deliver(Array("From: a@b.c\n\nhi".utf8))
        #expect(try m.pending() == [name])
        let claimed = try #require(try m.claim(name))
        #expect(files(m.curDirectory) == [name + ":2,"])
        #expect(try m.claim(name) == nil)
        #expect(try m.read(claimed) == Array("From: a@b.c\n\nhi".utf8))
    }

    @Test func archiveAndQuarantineAreIdempotentAndKeepEveryMessage() throws {
        let m = try makeMaildir()
        defer { try? FileManager.default.removeItem(at: m.root) }
        let a = try #require(try m.claim(try m.deliver(Array("one".utf8))))
        let q = try #require(try m.claim(try m.deliver(Array("two".utf8))))
        try m.archive(a)
        try m.archive(a)   // a repeated step after a crash changes nothing
        try m.quarantine(q, reason: "sender_mismatch: the reply comes from x@y")
        try m.quarantine(q, reason: "sender_mismatch: the reply comes from x@y")
        #expect(files(m.archiveDirectory) == [a.name])
        #expect(files(m.quarantineDirectory) == [q.name, q.name + ".reason"].sorted())
        let reason = try String(contentsOf: m.quarantineDirectory.appendingPathComponent(q.name + ".reason"), encoding: .utf8)
        #expect(reason == "sender_mismatch: the reply comes from x@y\n")
        #expect(files(m.curDirectory).isEmpty && files(m.newDirectory).isEmpty)
    }

    @Test func staleClaimsAreFoundAndTakenOverExclusively() throws {
        let m = try makeMaildir()
        defer { try? FileManager.default.removeItem(at: m.root) }
        let c = try #require(try m.claim(try m.deliver(Array("x".utf8))))
        #expect(try m.staleClaims(olderThan: 600).isEmpty)
        let stale = try m.staleClaims(olderThan: 600, now: Date().addingTimeInterval(3600))
        #expect(stale.map(\.name) == [c.name])
        let mine = try #require(try m.reclaim(stale[0]))
        #expect(try m.reclaim(stale[0]) == nil)   // the second repairer loses
        try m.archive(mine)
        #expect(files(m.archiveDirectory) == [c.name])
    }

    @Test func twoImportersRacingOverTwoThousandMessagesClaimEachExactlyOnce() async throws {
        let m = try makeMaildir()
        defer { try? FileManager.default.removeItem(at: m.root) }
        for i in 0..<2000 { try m.deliver(Array("message \(i)".utf8)) }
        let names = try m.pending()
        let maildir = m
        async let first = Task.detached { () throws -> [String] in
            var got: [String] = []
            for n in names { if let c = try maildir.claim(n) { got.append(c.name); try maildir.archive(c) } }
            return got
        }.value
        async let second = Task.detached { () throws -> [String] in
            var got: [String] = []
            for n in names.reversed() { if let c = try maildir.claim(n) { got.append(c.name); try maildir.archive(c) } }
            return got
        }.value
        let (a, b) = try await (first, second)
        #expect(a.count + b.count == 2000)
        #expect(Set(a).isDisjoint(with: Set(b)))
        #expect(files(m.archiveDirectory).count == 2000)
    }
}
