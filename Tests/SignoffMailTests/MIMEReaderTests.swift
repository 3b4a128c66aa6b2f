import Foundation
import Testing
@testable import SignoffMail

private func msg(_ s: String) -> [UInt8] { Array(s.utf8) }

struct MIMEReaderTests {
    @Test func unfoldsHeadersWithLFAndCRLF() throws {
        for eol in ["\n", "\r\n"] {
            let raw = ["From: A <a@example.org>", "Subject: one", "\ttwo", "", "body"].joined(separator: eol)
            let m = try MIMEMessage.parse(msg(raw))
            #expect(m.headers.first("subject") == "one\ttwo")
            #expect(try m.textBody() == "body")
        }
    }

    @Test func decodesRFC2047WordsAndDropsWhitespaceBetweenAdjacentWords() {
        #expect(EncodedWords.decode("=?UTF-8?B?w6lsw6g=?= =?ISO-8859-1?Q?ve_=E9?=") == "élève é")
        #expect(EncodedWords.decode("Re: =?utf-8?q?caf=C3=A9?= ok") == "Re: café ok")
        #expect(EncodedWords.decode("=?iso-8859-2?Q?=B1?= x") == "ą x")
        #expect(EncodedWords.decode("=?bogus") == "=?bogus")
    }

    @Test func joinsRFC2231ContinuationsWithCharsetAndLanguage() {
        let v = MIMEHeaderValue.parse("attachment; filename*0*=UTF-8'en'%C3%A9t%C3%A9; filename*1=\".txt\"; size=3")
        #expect(v.value == "attachment")
        #expect(v["filename"] == "été.txt")
        #expect(v["SIZE"] == "3")
        let ct = MIMEHeaderValue.parse("Text/Plain; charset=\"ISO-8859-1\" (latin); format=flowed")
        #expect(ct.value == "text/plain")
        #expect(ct["charset"] == "ISO-8859-1")
    }

    @Test func decodesQuotedPrintableWithSoftBreaksAndStrayEquals() {
        let out = TransferEncoding.decodeQuotedPrintable(Array("caf=C3=A9 soft=\r\nbreak a=b =ZZ   \nend".utf8)[...])
        #expect(String(decoding: out, as: UTF8.self) == "café softbreak a=b =ZZ\nend")
    }

    @Test func decodesBase64TolerantlyIgnoringJunkAndMissingPadding() {
        let out = TransferEncoding.decodeBase64(Array("SGVs\r\nbG8*gd29y bGQ".utf8)[...])
        #expect(String(decoding: out, as: UTF8.self) == "Hello world")
    }

    @Test(arguments: [
        ("iso-8859-1", [0x80, 0xE9] as [UInt8], "€é"),
        ("windows-1251", [0xCF, 0xF0, 0xE8], "При"),
        ("iso-8859-15", [0xA4], "€"),
        ("koi8-r", [0xF0, 0xD2, 0xC9], "При"),
        ("shift_jis", [0x82, 0xA0], "あ"),
        ("utf-8", [0xC3, 0xA9], "é"),
    ])
    func decodesCharsets(charset: String, bytes: [UInt8], expected: String) {
        #expect(Charsets.decode(bytes, charset: charset) == expected)
    }

    @Test func undecodableBytesBecomeReplacementCharacters() {
        #expect(Charsets.decode([0x41, 0xFF, 0x42] as [UInt8], charset: "shift_jis").contains("\u{FFFD}"))
    }

    @Test func prefersPlainTextInAlternativeAndSkipsAttachments() throws {
        let raw = """
        From: a@example.org
        Content-Type: multipart/mixed; boundary=outer

        --outer
        Content-Type: multipart/alternative; boundary="inner"

        --inner
        Content-Type: text/html; charset=utf-8

        <p>HTML</p>
        --inner
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        Plain=20text
        --inner--
        --outer
        Content-Type: text/plain
        Content-Disposition: attachment; filename=a.txt

        attached
        --outer--
        """
        let m = try MIMEMessage.parse(msg(raw))
        #expect(try m.textBody() == "Plain text")
        #expect(m.root.allParts().count == 5)
    }

    @Test func convertsHTMLOnlyRepliesToTextWithQuotes() throws {
        let raw = """
        From: a@example.org
        Content-Type: text/html; charset=utf-8

        <html><head><style>p{}</style><title>t</title></head><body><div>APPROVE&nbsp;&amp; ship</div><p>line&#8217;s two</p>
        <div class="gmail_quote">On Mon, Bob wrote:<br><blockquote>quoted <b>text</b><br>more</blockquote></div><script>x()</script></body></html>
        """
        let text = try #require(try MIMEMessage.parse(msg(raw)).textBody())
        #expect(text == "APPROVE & ship\nline’s two\nOn Mon, Bob wrote:\n> quoted text\n> more")
    }

    @Test func unwrapsFormatFlowedWithAndWithoutDelSp() {
        #expect(FormatFlowed.unwrap("one \ntwo\n> q \n> r\n-- \nsig", delSp: false) == "one two\n> q r\n-- \nsig")
        #expect(FormatFlowed.unwrap("abc \ndef", delSp: true) == "abcdef")
        #expect(FormatFlowed.unwrap(" From me", delSp: false) == "From me")
    }

    @Test func neverParsesInsideMessageRFC822() throws {
        let raw = """
        From: a@example.org
        Content-Type: multipart/mixed; boundary=b

        --b
        Content-Type: message/rfc822

        Content-Type: multipart/mixed; boundary=c

        --c
        Content-Type: text/plain

        inner
        --c--
        --b--
        """
        let m = try MIMEMessage.parse(msg(raw))
        #expect(m.root.allParts().count == 2)
        #expect(try m.textBody() == nil)
    }

    @Test func rejectsMessagesOverTheLimits() throws {
        var limits = MIMELimits()
        limits.maxRawBytes = 100
        #expect(throws: MIMEError.self) { try MIMEMessage.parse(msg("From: a@b.c\n\n" + String(repeating: "x", count: 200)), limits: limits) }
        // depth 12
        var raw = "From: a@b.c\n"
        for d in 0..<12 { raw += "Content-Type: multipart/mixed; boundary=b\(d)\n\n--b\(d)\n" }
        raw += "Content-Type: text/plain\n\nx\n"
        do { _ = try MIMEMessage.parse(msg(raw)); Issue.record("a message nested 12 deep parsed") } catch {
            guard case .tooLarge = error else { Issue.record("expected tooLarge, got \(error)"); return }
        }
        // 150 parts
        var many = "From: a@b.c\nContent-Type: multipart/mixed; boundary=z\n\n"
        for _ in 0..<150 { many += "--z\nContent-Type: text/plain\n\nx\n" }
        many += "--z--\n"
        #expect(throws: MIMEError.tooLarge("the message has more than 100 MIME parts")) { try MIMEMessage.parse(msg(many)) }
        // decoded text over 1 MiB
        let big = "From: a@b.c\n\n" + String(repeating: "y", count: 1_100_000)
        #expect(throws: MIMEError.self) { try MIMEMessage.parse(msg(big)).textBody() }
    }

    @Test func parsesAddressListsWithQuotedNamesCommentsAndGroups() {
        let list = EmailAddress.parseList(#""Doe, Jane" <jane@example.org>, bob@example.org (Bob), team: x@y.org, z@y.org;, =?utf-8?q?J=C3=B6rg?= <j@ex.de>"#)
        #expect(list.map(\.address) == ["jane@example.org", "bob@example.org", "x@y.org", "z@y.org", "j@ex.de"])
        #expect(list[0].displayName == "Doe, Jane")
        #expect(list[4].displayName == "Jörg")
    }
}
