import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import SignoffMail

/// Puts a decision line where a mail client puts the reply text, keeping each edited part's
/// transfer encoding and charset (the part is decoded, edited and encoded again).
enum CorpusEditing {
    static let tokenValue = "corpustok7x2q"
    static let reviewerAddress = EmailAddress("reviewer@corpus.example")

    /// Wraps a plain-text (or HTML) reply body as a delivered message to our reply address.
    static func wrap(_ body: [UInt8], html: Bool = false) -> [UInt8] {
        let usesCRLF = body.firstIndex(of: 0x0A).map { $0 > 0 && body[$0 - 1] == 0x0D } ?? false
        let eol = usesCRLF ? "\r\n" : "\n"
        let headers = [
            "Delivered-To: approvals+\(tokenValue)@signoff.example.org",
            "From: Reviewer <reviewer@corpus.example>",
            "To: approvals+\(tokenValue)@signoff.example.org",
            "Subject: Re: [signoff 1a2b] Please review",
            "Message-ID: <corpus@client.example>",
            "MIME-Version: 1.0",
            "Content-Type: \(html ? "text/html" : "text/plain"); charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ].joined(separator: eol) + eol + eol
        return Array(headers.utf8) + body
    }

    /// A whole .eml made deliverable: our trace header on top, From set to the reviewer.
    static func deliver(_ eml: [UInt8]) -> [UInt8] {
        var text = String(decoding: eml, as: UTF8.self)
        if let range = text.range(of: #"(?m)^From:.*(\r?\n[ \t].*)*$"#, options: .regularExpression) {
            text.replaceSubrange(range, with: "From: Reviewer <reviewer@corpus.example>")
        }
        // keep the raw bytes of everything but the From line: rebuild from pieces
        let fromStart = eml.indices.first { i in (i == 0 || eml[i - 1] == 0x0A) && eml[i...].starts(with: Array("From:".utf8)) }
        var out = Array("Delivered-To: approvals+\(tokenValue)@signoff.example.org\r\n".utf8)
        if let s = fromStart {
            var e = eml[s...].firstIndex(of: 0x0A).map { $0 + 1 } ?? eml.endIndex
            while e < eml.endIndex, eml[e] == 0x20 || eml[e] == 0x09 { e = eml[e...].firstIndex(of: 0x0A).map { $0 + 1 } ?? eml.endIndex }
            out += eml[..<s] + Array("From: Reviewer <reviewer@corpus.example>\r\n".utf8) + eml[e...]
        } else {
            out += Array("From: Reviewer <reviewer@corpus.example>\r\n".utf8) + eml
        }
        return out
    }

    /// Inserts `line` into every text/plain and text/html leaf part of `message`.
    static func insert(_ line: String, into message: [UInt8]) throws -> [UInt8] {
        let parsed = try MIMEMessage.parse(message)
        var edits: [(Range<Int>, [UInt8])] = []
        for part in parsed.root.allParts() where !part.isMultipart && !part.isAttachment {
            guard part.mimeType == "text/plain" || part.mimeType == "text/html" else { continue }
            let charset = part.contentType["charset"]
            let cte = part.headers.first("Content-Transfer-Encoding")?.lowercased().trimmingCharacters(in: .whitespaces) ?? "7bit"
            let raw = part.decodedBody()
            let text = Charsets.decode(raw, charset: charset)
            let eol = text.contains("\r\n") ? "\r\n" : "\n"
            let edited = part.mimeType == "text/html" ? insertHTML(line, into: text) : insertPlain(line, into: text, eol: eol)
            let encodedText = try encode(edited, charset: charset)
            var body: [UInt8]
            switch cte {
            case "base64": body = Array(Data(encodedText).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]).utf8) + [0x0D, 0x0A]
            case "quoted-printable": body = quotedPrintable(encodedText, eol: eol)
            default: body = encodedText
            }
            if body.isEmpty { body = [] }
            edits.append((part.body.startIndex..<part.body.endIndex, body))
        }
        var out = message
        for (range, body) in edits.sorted(by: { $0.0.lowerBound > $1.0.lowerBound }) { out.replaceSubrange(range, with: body) }
        return out
    }

    /// Before the first line of the visible reply (where the client's cursor was), or on top.
    static func insertPlain(_ line: String, into text: String, eol: String) -> String {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        var lines = normalized.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let visible = ReplyExtractor.visibleText(normalized)
        let firstVisible = visible.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
        let at = firstVisible.flatMap { fv in lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == fv } } ?? 0
        lines.insert(line, at: at)
        return lines.joined(separator: eol)
    }

    static func insertHTML(_ line: String, into html: String) -> String {
        let div = "<div>\(line)</div>"
        if let body = html.range(of: #"<body[^>]*>"#, options: [.regularExpression, .caseInsensitive]) {
            var h = html
            h.insert(contentsOf: div, at: body.upperBound)
            return h
        }
        return div + html
    }

    static func encode(_ text: String, charset: String?) throws -> [UInt8] {
        let name = Charsets.normalize(charset)
        switch name {
        case "", "utf-8", "utf8", "us-ascii", "ascii": return Array(text.utf8)
        case "iso-8859-1", "latin1", "windows-1252", "cp1252":
            guard let d = text.data(using: .windowsCP1252) else { throw EncodeError(charset: name) }
            return Array(d)
        default:
            let cd = iconv_open(name, "UTF-8")
            guard cd != iconv_t(bitPattern: -1) else { throw EncodeError(charset: name) }
            defer { iconv_close(cd) }
            var input = Array(text.utf8)
            var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
            var inLeft = input.count, outLeft = output.count
            let ok = input.withUnsafeMutableBufferPointer { ip in
                output.withUnsafeMutableBufferPointer { op in
                    var inP: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(ip.baseAddress!).assumingMemoryBound(to: CChar.self)
                    var outP: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(op.baseAddress!).assumingMemoryBound(to: CChar.self)
                    return iconv(cd, &inP, &inLeft, &outP, &outLeft) != -1
                }
            }
            guard ok else { throw EncodeError(charset: name) }
            return Array(output[..<(output.count - outLeft)])
        }
    }

    struct EncodeError: Error { var charset: String }

    static func quotedPrintable(_ bytes: [UInt8], eol: String) -> [UInt8] {
        var out: [UInt8] = []
        var lineLength = 0
        let hex = Array("0123456789ABCDEF".utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { out += [0x0D, 0x0A]; lineLength = 0; i += 2; continue }
            if b == 0x0A { out += Array(eol.utf8); lineLength = 0; i += 1; continue }
            var piece: [UInt8]
            let nextIsBreak = i + 1 >= bytes.count || bytes[i + 1] == 0x0A || bytes[i + 1] == 0x0D
            if (b >= 33 && b <= 126 && b != 0x3D) || ((b == 0x20 || b == 0x09) && !nextIsBreak) { piece = [b] }
            else { piece = [0x3D, hex[Int(b >> 4)], hex[Int(b & 0xF)]] }
            if lineLength + piece.count > 75 { out += [0x3D] + Array(eol.utf8); lineLength = 0 }
            out += piece
            lineLength += piece.count
            i += 1
        }
        return out
    }
}
