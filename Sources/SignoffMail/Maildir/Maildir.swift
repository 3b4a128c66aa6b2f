import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Maildir the importer reads: messages arrive in `new/`, are claimed into `cur/` by an
/// atomic rename, and end in `archive/` or `quarantine/` (with a `.reason` file beside them).
/// Nothing is ever deleted.
public struct Maildir: Sendable {
    /// The Maildir root (holding `new/`, `cur/`, `tmp/`).
    public let root: URL

    /// A Maildir failure, naming the path and the fix.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var code: String
        public var message: String
        public var description: String { "\(code): \(message)" }
    }

    /// A message this importer owns (it is in `cur/`).
    public struct Claimed: Sendable, Hashable {
        /// The base name (without the `:2,` info suffix).
        public var name: String
        /// The full path in `cur/`.
        public var path: URL
    }

    public var newDirectory: URL { root.appendingPathComponent("new") }
    public var curDirectory: URL { root.appendingPathComponent("cur") }
    public var archiveDirectory: URL { root.appendingPathComponent("archive") }
    public var quarantineDirectory: URL { root.appendingPathComponent("quarantine") }

    public init(root: URL) { self.root = root }

    /// Creates `new/`, `cur/`, `tmp/`, `archive/` and `quarantine/` when missing.
    public func create() throws(Failure) {
        for sub in ["new", "cur", "tmp", "archive", "quarantine"] {
            let dir = root.appendingPathComponent(sub)
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw Failure(code: "maildir_create", message: "cannot create \(dir.path): \(error.localizedDescription); check the directory's permissions")
            }
        }
    }

    /// The names waiting in `new/` (dot files skipped), oldest name first.
    public func pending() throws(Failure) -> [String] {
        try list(newDirectory).sorted()
    }

    /// Claims `name` from `new/` by renaming it to `cur/name:2,`. Nil when another importer
    /// claimed it first (ENOENT): that is normal, not an error.
    public func claim(_ name: String) throws(Failure) -> Claimed? {
        let base = Self.baseName(name)
        let target = curDirectory.appendingPathComponent(base + ":2,")
        let source = newDirectory.appendingPathComponent(name)
        if rename(source.path, target.path) == 0 { return Claimed(name: base, path: target) }
        let err = errno
        if err == ENOENT { return nil }
        throw Failure(code: "maildir_claim", message: "cannot move \(source.path) to \(target.path): \(String(cString: strerror(err)))")
    }

    /// Claimed messages left in `cur/` (a crash between claim and archive), whose claim is
    /// older than `olderThan` seconds. The repair pass processes them again; every step is
    /// idempotent.
    public func staleClaims(olderThan seconds: TimeInterval, now: Date = Date()) throws(Failure) -> [Claimed] {
        var out: [Claimed] = []
        for name in try list(curDirectory) where name.hasSuffix(":2,") || name.contains(":2,") {
            let path = curDirectory.appendingPathComponent(name)
            var st = stat()
            guard stat(path.path, &st) == 0 else { continue }
            let changed = Date(timeIntervalSince1970: TimeInterval(st.st_ctim.tv_sec))
            if now.timeIntervalSince(changed) >= seconds { out.append(Claimed(name: Self.baseName(name), path: path)) }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Takes over a stale claim by renaming it within `cur/` (so two repairing importers never
    /// both process it). Nil when someone else took it.
    public func reclaim(_ claimed: Claimed) throws(Failure) -> Claimed? {
        let target = curDirectory.appendingPathComponent(claimed.name + ":2,R")
        if claimed.path.lastPathComponent == target.lastPathComponent {
            // Already ours from an earlier repair; touch it by renaming to the plain claim name.
            let back = curDirectory.appendingPathComponent(claimed.name + ":2,")
            if rename(claimed.path.path, back.path) == 0 { return Claimed(name: claimed.name, path: back) }
        } else if rename(claimed.path.path, target.path) == 0 {
            return Claimed(name: claimed.name, path: target)
        }
        let err = errno
        if err == ENOENT { return nil }
        throw Failure(code: "maildir_claim", message: "cannot take over \(claimed.path.path): \(String(cString: strerror(err)))")
    }

    /// Reads a claimed message.
    public func read(_ claimed: Claimed, limit: Int = MIMELimits.standard.maxRawBytes + 1) throws(Failure) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: claimed.path.path) else {
            throw Failure(code: "maildir_read", message: "cannot open \(claimed.path.path)")
        }
        defer { try? handle.close() }
        do { return Array(try handle.read(upToCount: limit) ?? Data()) } catch {
            throw Failure(code: "maildir_read", message: "cannot read \(claimed.path.path): \(error.localizedDescription)")
        }
    }

    /// Moves a claimed message to `archive/NAME`. Idempotent: a message already archived is fine.
    public func archive(_ claimed: Claimed) throws(Failure) {
        try move(claimed, to: archiveDirectory)
    }

    /// Writes `quarantine/NAME.reason` (atomically) and then moves the message to
    /// `quarantine/NAME`. Idempotent: repeating it after a crash between the two steps is fine.
    public func quarantine(_ claimed: Claimed, reason: String) throws(Failure) {
        let reasonURL = quarantineDirectory.appendingPathComponent(claimed.name + ".reason")
        do { try Data((reason + "\n").utf8).write(to: reasonURL, options: .atomic) } catch {
            throw Failure(code: "maildir_quarantine", message: "cannot write \(reasonURL.path): \(error.localizedDescription)")
        }
        try move(claimed, to: quarantineDirectory)
    }

    /// One `rename(2)`, with no `fsync` of the file or of either directory, on purpose: the
    /// store's transaction, committed before any move, is the durable record. If a crash loses
    /// a rename (claim or archive), the message is found again in `new/` or `cur/`, processed
    /// again, and its dedupe key makes that a no-op apart from the move — so an fsync per file
    /// (or per batch) would buy nothing but time. A rename is atomic, so a message is always
    /// in exactly one folder.
    private func move(_ claimed: Claimed, to directory: URL) throws(Failure) {
        let target = directory.appendingPathComponent(claimed.name)
        if rename(claimed.path.path, target.path) == 0 { return }
        let err = errno
        if err == ENOENT, FileManager.default.fileExists(atPath: target.path) { return }   // already moved
        throw Failure(code: "maildir_move", message: "cannot move \(claimed.path.path) to \(target.path): \(String(cString: strerror(err)))")
    }

    /// `1700000000.M1P2.host:2,S` → `1700000000.M1P2.host`.
    static func baseName(_ name: String) -> String {
        if let colon = name.firstIndex(of: ":") { return String(name[..<colon]) }
        return name
    }

    private func list(_ dir: URL) throws(Failure) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }
        } catch {
            throw Failure(code: "maildir_list", message: "cannot list \(dir.path): \(error.localizedDescription); is the Maildir path right?")
        }
    }

    /// Delivers `bytes` the Maildir way (write to `tmp/`, rename into `new/`); for tests, tools
    /// and the file outbox. Returns the unique name.
    @discardableResult
    public func deliver(_ bytes: [UInt8]) throws(Failure) -> String {
        let name = "\(Int(Date().timeIntervalSince1970)).M\(UInt64.random(in: 0..<UInt64.max))P\(getpid()).signoff"
        let tmp = root.appendingPathComponent("tmp").appendingPathComponent(name)
        do { try Data(bytes).write(to: tmp) } catch {
            throw Failure(code: "maildir_deliver", message: "cannot write \(tmp.path): \(error.localizedDescription)")
        }
        if rename(tmp.path, newDirectory.appendingPathComponent(name).path) != 0 {
            throw Failure(code: "maildir_deliver", message: "cannot move \(tmp.path) into new/: \(String(cString: strerror(errno)))")
        }
        return name
    }
}
