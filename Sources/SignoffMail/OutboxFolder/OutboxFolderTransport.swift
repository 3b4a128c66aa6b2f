import Foundation

/// Delivers mail as `.eml` files into a folder (the embedded default when no SMTP server is
/// configured): another program, or a person, picks them up.
///
/// Each message is written to `<folder>/.tmp-<name>`, flushed with `fsync`, then renamed to
/// `<folder>/<name>.eml`, so a reader never sees half a file; the folder is fsynced after the
/// rename. The name comes from the Message-ID (characters other than letters, digits, `.`, `-`,
/// `_`, `@` become `_`), so sending the same message twice overwrites one file instead of
/// making two.
public struct OutboxFolderTransport: MailTransport {
    /// The folder; created on first use.
    public let folder: String

    public init(folder: String) {
        self.folder = folder
    }

    public func send(raw: [UInt8], from: EmailAddress, to: [EmailAddress]) async throws -> DeliveryResult {
        let name = OutboxFolderTransport.fileName(forMessageIn: raw)
        let path = try write(raw, name: name)
        return DeliveryResult(location: path)
    }

    /// The file name for a message: its Message-ID made file-safe, plus `.eml`; a
    /// time-and-random name when the message has no Message-ID.
    public static func fileName(forMessageIn raw: [UInt8]) -> String {
        if let id = messageID(in: raw) {
            let safe = String(id.unicodeScalars.map { c -> Character in
                let ok = (c.value < 128) && (CharacterSet.alphanumerics.contains(c) || "._-@".unicodeScalars.contains(c))
                return ok ? Character(c) : "_"
            })
            let trimmed = safe.trimmingCharacters(in: CharacterSet(charactersIn: "_."))
            if !trimmed.isEmpty { return String(trimmed.prefix(200)) + ".eml" }
        }
        var rng = SystemRandomNumberGenerator()
        return "\(Int(Date().timeIntervalSince1970))-\(String(rng.next() as UInt64, radix: 36)).eml"
    }

    /// The Message-ID value from the header block, angle brackets removed.
    static func messageID(in raw: [UInt8]) -> String? {
        let headerEnd = raw.indices.first { i in
            i + 3 < raw.count && raw[i] == 0x0D && raw[i + 1] == 0x0A && raw[i + 2] == 0x0D && raw[i + 3] == 0x0A
        } ?? raw.count
        let head = String(decoding: raw[..<headerEnd], as: UTF8.self)
        for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("message-id:") {
            let value = line.dropFirst("message-id:".count).trimmingCharacters(in: .whitespaces)
            return value.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        }
        return nil
    }

    private func write(_ raw: [UInt8], name: String) throws -> String {
        func failure(_ what: String) -> MailDeliveryError {
            let reason = String(cString: strerror(errno))
            return MailDeliveryError(code: "outbox_write", kind: .permanent,
                message: "cannot \(what) in outbox folder \(folder): \(reason); check that the folder exists and is writable")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw MailDeliveryError(code: "outbox_write", kind: .permanent,
                message: "cannot create outbox folder \(folder): \(error.localizedDescription); create it or fix `outbox:` in signoff.yaml")
        }
        let final = (folder as NSString).appendingPathComponent(name)
        var rng = SystemRandomNumberGenerator()
        let temp = (folder as NSString).appendingPathComponent(".tmp-\(String(rng.next() as UInt64, radix: 36))-\(name)")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure("create \(temp)") }
        var ok = raw.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        if ok { ok = fsync(fd) == 0 }
        let writeErrno = errno
        close(fd)
        guard ok else {
            unlink(temp)
            errno = writeErrno
            throw failure("write \(temp)")
        }
        guard rename(temp, final) == 0 else {
            let e = failure("rename \(temp) to \(final)")
            unlink(temp)
            throw e
        }
        let dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 { _ = fsync(dirfd); close(dirfd) }
        return final
    }
}
