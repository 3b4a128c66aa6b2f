import Foundation

/// A message read from raw bytes into a tree of parts, tolerant of real-world mail and bounded
/// by `MIMELimits` (10 MiB raw, depth 10, 100 parts, 1 MiB decoded text).
///
/// Parsing never decodes bodies; `textBody()` decodes the one text part a reply is read from.
/// `message/rfc822` parts are leaves: their content is never parsed as part of this message.
public struct MIMEMessage: Sendable {
    /// One entity: a leaf with a body, or a multipart with children.
    public struct Part: Sendable {
        public var headers: MIMEHeaders
        /// `Content-Type` (default `text/plain; charset=us-ascii`).
        public var contentType: MIMEHeaderValue
        /// The raw body bytes (still transfer-encoded); empty for a multipart.
        public var body: ArraySlice<UInt8>
        public var children: [Part]
        public var depth: Int

        /// `type/subtype`, lower-cased.
        public var mimeType: String { contentType.value }
        public var isMultipart: Bool { mimeType.hasPrefix("multipart/") }
        /// Whether `Content-Disposition` says attachment.
        public var isAttachment: Bool {
            guard let d = headers.first("Content-Disposition") else { return false }
            return MIMEHeaderValue.parse(d).value == "attachment"
        }

        /// The body after undoing the transfer encoding.
        public func decodedBody() -> [UInt8] {
            TransferEncoding.decode(body, encoding: headers.first("Content-Transfer-Encoding"))
        }

        /// The body as text: transfer-decoded, charset-decoded, line ends made LF, and
        /// `format=flowed` unwrapped.
        public func decodedText(limit: Int = MIMELimits.standard.maxDecodedText) throws(MIMEError) -> String {
            let bytes = TransferEncoding.decodeNormalizingLineEnds(body, encoding: headers.first("Content-Transfer-Encoding"))
            if bytes.count > limit * 4 { throw .tooLarge("a text part decodes to \(bytes.count) bytes (limit \(limit) characters)") }
            var text = Charsets.decode(bytes, charset: contentType["charset"])
            // (a text has at most as many scalars as UTF-8 bytes)
            if text.utf8.count > limit, text.unicodeScalars.count > limit { throw .tooLarge("a text part decodes to more than \(limit) characters") }
            if contentType["format"]?.lowercased() == "flowed", mimeType == "text/plain" {
                text = FormatFlowed.unwrap(text, delSp: contentType["delsp"]?.lowercased() == "yes")
            }
            return text
        }

        /// Every part in this subtree, depth first, self first.
        public func allParts() -> [Part] { [self] + children.flatMap { $0.allParts() } }
    }

    /// The top-level entity (its headers are the message headers).
    public var root: Part
    /// Size of the raw message in bytes.
    public var rawSize: Int

    public var headers: MIMEHeaders { root.headers }

    /// Parses a message. Throws `.tooLarge` past a limit and `.unparseable` when the bytes
    /// hold no header section at all.
    public static func parse(_ bytes: [UInt8], limits: MIMELimits = .standard) throws(MIMEError) -> MIMEMessage {
        try parse(bytes[...], limits: limits)
    }

    /// Parses a message from a slice (see `parse(_:limits:)`).
    public static func parse(_ bytes: ArraySlice<UInt8>, limits: MIMELimits = .standard) throws(MIMEError) -> MIMEMessage {
        if bytes.count > limits.maxRawBytes {
            throw .tooLarge("the message is \(bytes.count) bytes (limit \(limits.maxRawBytes))")
        }
        var counter = 0
        let root = try parsePart(bytes, depth: 0, limits: limits, counter: &counter, defaultType: "text/plain")
        if root.headers.fields.isEmpty { throw .unparseable("no header fields found before the body") }
        return MIMEMessage(root: root, rawSize: bytes.count)
    }

    /// Reads only the header section of `bytes` (used for trace headers and for the headers of
    /// a bounced message; never looks at a body).
    public static func parseHeaders(_ bytes: ArraySlice<UInt8>) -> MIMEHeaders {
        MIMEHeaders.parse(splitHeaderBody(bytes).0)
    }

    static func splitHeaderBody(_ bytes: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        // The header section ends at the first empty line (LF LF or LF CR LF). A part starting
        // with an empty line has no headers.
        let i = bytes.startIndex
        if i < bytes.endIndex, bytes[i] == 0x0A { return (bytes[i..<i], bytes[(i + 1)...]) }
        if i + 1 < bytes.endIndex, bytes[i] == 0x0D, bytes[i + 1] == 0x0A { return (bytes[i..<i], bytes[(i + 2)...]) }
        // Each LF (found with memchr) followed by LF or CR LF ends the section; offsets within
        // the buffer are `bytes` indices minus `i`.
        let cut: (Int, Int)? = bytes.withUnsafeBufferPointer { u in
            let n = u.count
            guard n > 0, let base = u.baseAddress else { return nil }
            var pos = 0
            while pos < n, let p = memchr(base + pos, 0x0A, n - pos) {
                let next = UnsafeRawPointer(p) - UnsafeRawPointer(base) + 1
                if next < n, u[next] == 0x0A { return (next, next + 1) }
                if next + 1 < n, u[next] == 0x0D, u[next + 1] == 0x0A { return (next, next + 2) }
                pos = next
            }
            return nil
        }
        if let (headerEnd, bodyStart) = cut { return (bytes[i..<(i + headerEnd)], bytes[(i + bodyStart)...]) }
        return (bytes, bytes[bytes.endIndex...])
    }

    private static func parsePart(_ bytes: ArraySlice<UInt8>, depth: Int, limits: MIMELimits,
                                  counter: inout Int, defaultType: String) throws(MIMEError) -> Part {
        counter += 1
        if counter > limits.maxParts { throw .tooLarge("the message has more than \(limits.maxParts) MIME parts") }
        if depth > limits.maxDepth { throw .tooLarge("the message nests MIME parts deeper than \(limits.maxDepth)") }
        let (headerBytes, body) = splitHeaderBody(bytes)
        let headers = MIMEHeaders.parse(headerBytes)
        var contentType = headers.first("Content-Type").map(MIMEHeaderValue.parse) ?? MIMEHeaderValue(value: defaultType)
        if !TextFast.containsCharacter(contentType.value, 0x2F) { contentType = MIMEHeaderValue(value: "text/plain", parameters: contentType.parameters) }
        var part = Part(headers: headers, contentType: contentType, body: body, children: [], depth: depth)
        guard part.isMultipart, let boundary = contentType["boundary"], !boundary.isEmpty else { return part }
        let childDefault = contentType.value == "multipart/digest" ? "message/rfc822" : "text/plain"
        for section in splitMultipart(body, boundary: Array(boundary.utf8)) {
            part.children.append(try parsePart(section, depth: depth + 1, limits: limits, counter: &counter, defaultType: childDefault))
        }
        part.body = body[body.startIndex..<body.startIndex]
        return part
    }

    /// The sections between `--boundary` lines; a missing close delimiter ends at the end.
    static func splitMultipart(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>] {
        // Lines found with memchr; a line is a delimiter when it starts with "--" + boundary
        // (memcmp) and the rest is "--" (close) and/or spaces, tabs and CRs.
        let offset = body.startIndex
        return body.withUnsafeBufferPointer { u -> [ArraySlice<UInt8>] in
            boundary.withUnsafeBufferPointer { bd -> [ArraySlice<UInt8>] in
                var sections: [ArraySlice<UInt8>] = []
                let n = u.count
                guard n > 0, let base = u.baseAddress else { return sections }
                var sectionStart: Int? = nil
                var lineStart = 0
                let delimiterCount = bd.count + 2
                while lineStart < n {
                    let lf = memchr(base + lineStart, 0x0A, n - lineStart).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) }
                    let lineEnd = lf ?? n
                    if lineEnd - lineStart >= delimiterCount, u[lineStart] == 0x2D, u[lineStart + 1] == 0x2D,
                       bd.isEmpty || memcmp(base + lineStart + 2, bd.baseAddress!, bd.count) == 0 {
                        var r = lineStart + delimiterCount
                        let isClose = r + 2 <= lineEnd && u[r] == 0x2D && u[r + 1] == 0x2D
                        if isClose { r += 2 }
                        var blankTail = true
                        while r < lineEnd { let c = u[r]; if !(c == 0x20 || c == 0x09 || c == 0x0D) { blankTail = false; break }; r += 1 }
                        if blankTail {
                            if let s = sectionStart {
                                // the line break before the delimiter belongs to the delimiter
                                var end = lineStart
                                if end > s, u[end - 1] == 0x0A { end -= 1; if end > s, u[end - 1] == 0x0D { end -= 1 } }
                                sections.append(body[(offset + s)..<(offset + max(s, end))])
                            }
                            if isClose { return sections }
                            sectionStart = lf.map { $0 + 1 } ?? n
                        }
                    }
                    lineStart = lf.map { $0 + 1 } ?? n
                }
                if let s = sectionStart, s < n { sections.append(body[(offset + s)...]) }
                return sections
            }
        }
    }

    // MARK: - The reply text

    /// The part a reply is read from: in `multipart/alternative` the text/plain alternative,
    /// else the HTML one; in mixed/related/signed the first inline text part. Never descends
    /// into `message/rfc822`.
    public func textPart() -> Part? { Self.textPart(in: root) }

    private static func textPart(in part: Part) -> Part? {
        if part.isMultipart {
            if part.mimeType == "multipart/alternative" {
                // prefer plain text anywhere in the alternatives, else HTML
                for child in part.children { if let p = textPart(in: child), p.mimeType == "text/plain" { return p } }
                for child in part.children { if let p = textPart(in: child) { return p } }
                return nil
            }
            if part.mimeType == "multipart/report" {
                return part.children.first.flatMap { textPart(in: $0) }
            }
            for child in part.children where !child.isAttachment {
                if let p = textPart(in: child) { return p }
            }
            return nil
        }
        if part.isAttachment { return nil }
        if part.mimeType == "text/plain" || part.mimeType == "text/html" || part.mimeType == "text/enriched" { return part }
        return nil
    }

    /// The decoded text of the reply: the plain-text part, or the HTML part converted to text
    /// (block elements → line breaks, blockquote → `> ` lines). Nil when there is no text.
    public func textBody(limits: MIMELimits = .standard) throws(MIMEError) -> String? {
        guard let part = textPart() else { return nil }
        let text = try part.decodedText(limit: limits.maxDecodedText)
        if part.mimeType == "text/html" { return HTMLText.toText(text) }
        return text
    }
}

/// The bounds a reply must stay within; past any of them the message is quarantined `too_large`.
public struct MIMELimits: Sendable, Hashable {
    public var maxRawBytes = 10 * 1024 * 1024
    public var maxDepth = 10
    public var maxParts = 100
    public var maxDecodedText = 1024 * 1024
    public var maxReasonCharacters = 4000
    public init() {}
    /// The limits of EMAIL.md.
    public static let standard = MIMELimits()
}

/// Why a message could not be read.
public enum MIMEError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Over a limit of `MIMELimits` (outcome `too_large`).
    case tooLarge(String)
    /// Not a message at all (outcome `unparseable`).
    case unparseable(String)

    public var description: String {
        switch self {
        case .tooLarge(let m): return "too_large: \(m)"
        case .unparseable(let m): return "unparseable: \(m)"
        }
    }
}
