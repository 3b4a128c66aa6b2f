import Foundation
import SignoffMail
@testable import SignoffRunner
import SignoffStore
import Testing
import SignoffTestSupport

/// A real SMTP server (aiosmtpd) on a free loopback port that delivers every message into a
/// Maildir with the trace headers an MTA adds: Return-Path, Delivered-To, X-Original-To and an
/// Authentication-Results header from `mx.signoff.test` (dmarc=pass when the envelope sender's
/// domain equals the From domain — a test MTA's stand-in for DMARC).
final class LoopbackMTA: Sendable {
    let process: Subprocess
    let port: Int

    static let script = #"""
    import asyncio, email.utils, os, sys, time, uuid
    from aiosmtpd.controller import Controller
    maildir = sys.argv[1]
    class Deliver:
        async def handle_DATA(self, server, session, envelope):
            raw = envelope.original_content or envelope.content
            head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
            from_domain = ""
            for line in head.splitlines():
                if line.lower().startswith("from:"):
                    addrs = email.utils.getaddresses([line[5:]])
                    if addrs and "@" in addrs[0][1]:
                        from_domain = addrs[0][1].rsplit("@", 1)[1].lower()
            env_domain = envelope.mail_from.rsplit("@", 1)[1].lower() if "@" in envelope.mail_from else ""
            dmarc = "pass" if from_domain and env_domain == from_domain else "fail"
            for rcpt in envelope.rcpt_tos:
                trace = (f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpt}\r\nX-Original-To: {rcpt}\r\n"
                         f"Authentication-Results: mx.signoff.test; dmarc={dmarc} header.from={from_domain}\r\n").encode()
                name = f"{time.time():.6f}.{uuid.uuid4().hex}.mta"
                tmp = os.path.join(maildir, "tmp", name)
                with open(tmp, "wb") as f:
                    f.write(trace + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
                os.rename(tmp, os.path.join(maildir, "new", name))
            return "250 delivered"
    import socket
    probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
    controller = Controller(Deliver(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()
    """#

    init(maildir: Maildir) throws {
        let python = try TestEnvironment.python()
        let scriptURL = maildir.root.deletingLastPathComponent().appendingPathComponent("mta.py")
        try Self.script.write(to: scriptURL, atomically: true, encoding: .utf8)
        process = try Subprocess(python, [scriptURL.path, maildir.root.path], stdin: .pipe, stdout: .pipe)
        guard let line = process.readLine(), let p = Int(line.trimmingCharacters(in: .whitespaces)) else {
            process.terminate()
            throw ImportTestError("the test MTA did not start (aiosmtpd missing? run scripts/test)")
        }
        port = p
    }

    /// Sends `raw` from `envelopeFrom` to `to` over SMTP with Python's smtplib (a real client).
    func send(_ raw: [UInt8], envelopeFrom: String, to: String) throws {
        try SMTPServer.send(raw, port: port, envelopeFrom: envelopeFrom, to: to)
    }

    func stop() {
        process.closeStdin()  // the script ends when its stdin does
        process.waitUntilExit()
    }
}

@Suite(.serialized)
struct ImportWholeLoopTests {
    /// Replies travel over real SMTP into a real Maildir and are imported: approve with a
    /// comment, a reply from the wrong sender, a forged Authentication-Results with a foreign
    /// authserv-id, an out-of-office reply quoting APPROVE, and the same message sent twice.
    @Test(arguments: ImportBackend.allCases)
    func repliesOverSMTPDecideExactlyWhenTheyShould(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend)
        defer { Task { await f.close() } }
        let mta = try LoopbackMTA(maildir: f.maildir)
        defer { mta.stop() }
        let to = "approvals+\(f.token)@signoff.test"
        func message(_ body: String, from: String = "Editor <editor@example.org>", extra: [String] = [], id: String = UUID().uuidString) -> [UInt8] {
            let h = extra + ["From: \(from)", "To: \(to)", "Subject: Re: [signoff] Publish?", "Message-ID: <\(id)@client.example>",
                             "In-Reply-To: <\(f.requestMessageID)>", "MIME-Version: 1.0",
                             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"]
            return Array((h.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
        }
        // Automatic, forged and wrong-sender mail first: none may decide.
        try mta.send(message("APPROVE\r\n\r\nI am away until Monday.\r\n\r\nOn Mon, Signoff wrote:\r\n> APPROVE or REJECT: reason",
                             extra: ["Auto-Submitted: auto-replied"]), envelopeFrom: "editor@example.org", to: to)
        try mta.send(message("APPROVE", from: "Editor <editor@example.org>",
                             extra: ["Authentication-Results: mx.evil.example; dmarc=pass header.from=example.org"]),
                     envelopeFrom: "attacker@evil.example", to: to)
        try mta.send(message("APPROVE", from: "Mallory <mallory@evil.example>"), envelopeFrom: "mallory@evil.example", to: to)
        var summary = try await f.pass().run()
        #expect(summary.outcomes == ["automatic": 1, "auth_failed": 1, "sender_mismatch": 1])
        #expect(try await f.store.request(id: f.requestID)?.status == .pending)

        // The genuine reply, delivered twice.
        let reply = message("APPROVE: ship it =E2=9C=93\r\n\r\nOn Mon, Signoff <approvals@signoff.test> wrote:\r\n> REJECT: reason", id: "genuine-\(UUID().uuidString)")
        try mta.send(reply, envelopeFrom: "editor@example.org", to: to)
        try mta.send(reply, envelopeFrom: "editor@example.org", to: to)
        summary = try await f.pass().run()
        #expect(summary.outcomes == ["applied": 1, "duplicate": 1])
        let request = try #require(try await f.store.request(id: f.requestID))
        #expect(request.status == .answered && request.decision == "approve")
        #expect(try await f.store.votes(requestID: f.requestID).first?.reason == "ship it ✓")
        #expect(try await f.store.run(id: f.runID)?.status == .queued)
        #expect(f.files("new").isEmpty && f.files("cur").isEmpty)
        #expect(f.files("archive").count == 3 && f.files("quarantine").count == 4)
    }

    /// Two reviewers of a quorum-any request answer at the same moment: one decision.
    @Test(arguments: ImportBackend.allCases)
    func twoReviewersAnsweringAtOnceRecordOneDecision(backend: ImportBackend) async throws {
        let f = try await ImportFixture.make(backend, reviewers: ["editor@example.org", "chief@example.org"])
        defer { Task { await f.close() } }
        try f.maildir.deliver(f.reply("APPROVE"))
        try f.maildir.deliver(f.reply("REJECT: not yet", from: "Chief <chief@example.org>", token: f.token + "1"))
        async let a = f.pass().run()
        async let b = f.pass().run()
        let (x, y) = try await (a, b)
        let applied = (x.outcomes["applied"] ?? 0) + (y.outcomes["applied"] ?? 0)
        let late = (x.outcomes["already_decided"] ?? 0) + (y.outcomes["already_decided"] ?? 0)
        #expect(applied == 1 && late == 1, "\(x.outcomes) \(y.outcomes)")
        let request = try #require(try await f.store.request(id: f.requestID))
        #expect(request.status == .answered)
    }
}
