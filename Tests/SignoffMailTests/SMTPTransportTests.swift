import Foundation
import Testing
@testable import SignoffMail
import SignoffTestSupport

/// Headers of a delivered message as Python's `email` package reads them.
struct DeliveredHeaders: Decodable {
    var defects: [String]
    var deliveredTo: String?
    var returnPath: String?
    var received: String?
    var authenticationResults: String?
    var replyTo: String?
    var messageID: String?
    var inReplyTo: String?
    var subject: String?
    var text: String?

    static let script = #"""
import sys, json, email
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
defects = [type(d).__name__ for p in msg.walk() for d in p.defects]
def h(n):
    v = msg[n]
    return str(v) if v is not None else None
b = msg.get_body(('plain',))
print(json.dumps({'defects': defects, 'deliveredTo': h('Delivered-To'), 'returnPath': h('Return-Path'),
  'received': h('Received'), 'authenticationResults': h('Authentication-Results'), 'replyTo': h('Reply-To'),
  'messageID': h('Message-ID'), 'inReplyTo': h('In-Reply-To'), 'subject': h('Subject'),
  'text': b.get_content().replace('\r\n', '\n') if b is not None else None}))
"""#

    static func parse(_ raw: [UInt8]) throws -> DeliveredHeaders {
        try JSONDecoder().decode(DeliveredHeaders.self, from: Data(MailTestEnvironment.runPython(script: script, input: raw).utf8))
    }
}

@Suite(.serialized)
struct SMTPTransportTests {
    func plainLoopback(_ server: SMTPServer, _ configure: (inout SMTPConfiguration) -> Void = { _ in }) throws -> SMTPTransport {
        var configuration = SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)", connectTimeout: .seconds(5), totalTimeout: .seconds(20))
        configure(&configuration)
        return try SMTPTransport(configuration: configuration)
    }

    @Test func requestMailIsDeliveredWithTokenAndThreadHeadersIntact() async throws {
        let server = try SMTPServer(["--authserv-id", "mx.test.example"])
        defer { server.stop() }
        let transport = try plainLoopback(server)
        let token = ReplyToken()
        let request = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: token)
        let result = try await transport.send(request)
        #expect(result.responseCode == 250)
        let reminder = try OutboundFixtures.composer.compose(.reminder, context: OutboundFixtures.context(), token: token,
                                                             inReplyTo: request.messageID)
        _ = try await transport.send(reminder)

        let delivered = try await server.waitForDelivery(count: 2)
        try #require(delivered.count == 2)
        let first = try DeliveredHeaders.parse(delivered[0])
        let second = try DeliveredHeaders.parse(delivered[1])
        let (req, rem) = first.messageID == request.messageID ? (first, second) : (second, first)
        #expect(req.defects.isEmpty && rem.defects.isEmpty)
        #expect(req.messageID == request.messageID)
        #expect(req.deliveredTo == "editor@example.org")
        #expect(req.returnPath == "<signoff@example.org>")
        #expect(req.authenticationResults?.hasPrefix("mx.test.example;") == true)
        #expect(req.authenticationResults?.contains("dmarc=pass header.from=example.org") == true)
        #expect(req.replyTo == "approvals+\(token.value)@example.org")
        #expect(req.text == request.text)
        #expect(rem.inReplyTo == request.messageID)
        #expect(rem.replyTo == req.replyTo, "a reminder carries the same token")
        #expect(rem.subject?.contains("[signoff \(MailComposer.subjectTag(requestID: "q-0001"))]") == true)
    }

    @Test func startTLSWithATestCertificateDelivers() async throws {
        let cert = try TestCertificate.make()
        let server = try SMTPServer(["--tls-cert", cert.certificate, "--tls-key", cert.key, "--require-starttls"])
        defer { server.stop() }
        let transport = try plainLoopback(server) { $0.tls = .startTLS; $0.caFile = cert.certificate }
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let result = try await transport.send(mail)
        #expect(result.responseCode == 250)
        let delivered = try await server.waitForDelivery(count: 1)
        let headers = try DeliveredHeaders.parse(try #require(delivered.first))
        #expect(headers.received?.contains("with ESMTPS") == true, "delivered over TLS: \(headers.received ?? "")")
    }

    @Test func implicitTLSOverSMTPSDelivers() async throws {
        let cert = try TestCertificate.make()
        let server = try SMTPServer(["--tls-cert", cert.certificate, "--tls-key", cert.key, "--implicit-tls"])
        defer { server.stop() }
        let transport = try SMTPTransport(configuration: SMTPConfiguration(url: "smtps://localhost:\(server.port)",
                                                                           caFile: cert.certificate, connectTimeout: .seconds(5)))
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        #expect(try await transport.send(mail).responseCode == 250)
        let delivered = try await server.waitForDelivery(count: 1)
        #expect(delivered.count == 1)
    }

    @Test func startTLSRequiredButNotOfferedSendsNothing() async throws {
        let server = try SMTPServer()
        defer { server.stop() }
        let transport = try plainLoopback(server) { $0.tls = .startTLS }
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let error = await #expect(throws: MailDeliveryError.self) { try await transport.send(mail) }
        #expect(error?.code == "smtp_tls_required")
        #expect(try server.delivered().isEmpty)
    }

    @Test func untrustedCertificateIsRefused() async throws {
        let cert = try TestCertificate.make()
        let server = try SMTPServer(["--tls-cert", cert.certificate, "--tls-key", cert.key])
        defer { server.stop() }
        let transport = try plainLoopback(server) { $0.tls = .startTLS }   // system CAs only
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        await #expect(throws: MailDeliveryError.self) { try await transport.send(mail) }
        #expect(try server.delivered().isEmpty)
    }

    @Test func plainTextToANonLoopbackHostIsRefusedBeforeConnecting() throws {
        #expect {
            try SMTPTransport(configuration: SMTPConfiguration(url: "smtp://mail.example.org:25", tls: .none))
        } throws: { ($0 as? MailDeliveryError)?.code == "smtp_tls_required" && ($0 as? MailDeliveryError)?.kind == .permanent }
        let automatic = try SMTPConfiguration(url: "smtp://mail.example.org:587").resolve()
        #expect(automatic.requireTLS, "smtp:// to another host means STARTTLS required")
        #expect(try SMTPConfiguration(url: "smtps://mail.example.org:465").resolve().requireTLS)
        #expect(try !SMTPConfiguration(url: "smtp://[::1]:25").resolve().requireTLS)
        #expect(try !SMTPConfiguration(url: "smtp://localhost:25", tls: .none).resolve().requireTLS)
        #expect(throws: MailDeliveryError.self) { try SMTPConfiguration(url: "http://mail.example.org").resolve() }
        #expect(throws: MailDeliveryError.self) { try SMTPConfiguration(url: "smtp://u:secret@mail.example.org").resolve() }
    }

    @Test func deferral451IsTransientAndTheRetryDelivers() async throws {
        let server = try SMTPServer(["--defer-first", "1"])
        defer { server.stop() }
        let transport = try plainLoopback(server)
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let raw = mail.rfc5322()
        let error = await #expect(throws: MailDeliveryError.self) {
            try await transport.send(raw: raw, from: mail.from, to: mail.to)
        }
        #expect(error?.kind == .transient)
        #expect(error?.responseCode == 451)
        #expect(error?.serverText?.contains("Try again later") == true)
        let result = try await transport.send(raw: raw, from: mail.from, to: mail.to)
        #expect(result.responseCode == 250)
        let delivered = try await server.waitForDelivery(count: 1)
        #expect(delivered.count == 1)
    }

    @Test func rejection550IsPermanentWithTheServersText() async throws {
        let server = try SMTPServer(["--reject-all"])
        defer { server.stop() }
        let transport = try plainLoopback(server)
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let error = await #expect(throws: MailDeliveryError.self) { try await transport.send(mail) }
        #expect(error?.kind == .permanent)
        #expect(error?.code == "smtp_rejected")
        #expect(error?.responseCode == 550)
        #expect(error?.serverText?.contains("Recipient address rejected: User unknown") == true)
        #expect(error?.message.contains("User unknown") == true)
        #expect(try server.delivered().isEmpty)
    }

    @Test func deadServerIsATransientConnectionError() async throws {
        let server = try SMTPServer()
        let port = server.port
        server.stop()
        let transport = try SMTPTransport(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(port)", connectTimeout: .seconds(2)))
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let error = await #expect(throws: MailDeliveryError.self) { try await transport.send(mail) }
        #expect(error?.kind == .transient)
        #expect(error?.code == "smtp_connect")
    }

    @Test func authWithPasswordFileDeliversAndAWrongPasswordIsPermanentAndNotShown() async throws {
        let server = try SMTPServer(["--auth-user", "signoff", "--auth-password", "s3cret-pw"])
        defer { server.stop() }
        let dir = try TestEnvironment.temporaryDirectory("pw")
        try "s3cret-pw\n".write(toFile: dir + "/password", atomically: true, encoding: .utf8)
        let good = try plainLoopback(server) { $0.username = "signoff"; $0.passwordFile = dir + "/password" }
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        #expect(try await good.send(mail).responseCode == 250)

        let bad = try plainLoopback(server) { $0.username = "signoff"; $0.password = "wrong-horse-battery" }
        let error = await #expect(throws: MailDeliveryError.self) { try await bad.send(mail) }
        #expect(error?.kind == .permanent)
        #expect(error.map { !"\($0)".contains("wrong-horse-battery") } == true)
        #expect(try await server.waitForDelivery(count: 1).count == 1)
    }
}

struct OutboundFolderTests {
    @Test func messageIsWrittenAtomicallyAsEmlNamedByMessageID() async throws {
        let dir = try TestEnvironment.temporaryDirectory("outbox") + "/outbox"
        let transport = OutboxFolderTransport(folder: dir)
        let mail = try OutboundFixtures.composer.compose(.request, context: OutboundFixtures.context(), token: ReplyToken())
        let result = try await transport.send(mail)
        let id = mail.messageID.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        #expect(result.location == dir + "/" + id + ".eml")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: result.location))) == mail.rfc5322())
        // Sending the same message again replaces the file; no temp files are left behind.
        _ = try await transport.send(mail)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [id + ".eml"])
    }

    @Test func hostileMessageIDCannotEscapeTheFolder() {
        let raw = Array("Message-ID: <../../etc/passwd@x>\r\n\r\nbody".utf8)
        let name = OutboxFolderTransport.fileName(forMessageIn: raw)
        #expect(!name.contains("/"))
        #expect(name.hasSuffix(".eml"))
    }

    @Test func unwritableFolderIsAPermanentError() async throws {
        let transport = OutboxFolderTransport(folder: "/proc/signoff-cannot-write-here")
        let mail = MailMessage(from: EmailAddress("a@example.org"), to: [EmailAddress("b@example.org")], subject: "s", text: "t")
        let error = await #expect(throws: MailDeliveryError.self) { try await transport.send(mail) }
        #expect(error?.code == "outbox_write")
    }
}
