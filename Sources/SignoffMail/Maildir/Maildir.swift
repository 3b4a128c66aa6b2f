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
        /// The full path in `cur/`, as the file system takes it.
        public var file: String
        /// The full path in `cur/`.
        public var path: URL { URL(filePath: file, directoryHint: .notDirectory) }
        /// The file's name in `cur/` (the base name and its info suffix).
        public var fileName: String { String(file[file.index(after: file.lastIndex(of: "/") ?? file.startIndex)...]) }

        public init(name: String, file: String) { self.name = name; self.file = file }
    }

    // The folders' paths, joined once: the importer builds two paths per message, and
    // `URL.appendingPathComponent` parses the URL and asks the file system whether each
    // result is a directory (a `stat` per call).
    private let newPath: String, curPath: String, archivePath: String, quarantinePath: String, tmpPath: String

    public var newDirectory: URL { URL(filePath: newPath, directoryHint: .isDirectory) }
    public var curDirectory: URL { URL(filePath: curPath, directoryHint: .isDirectory) }
    public var archiveDirectory: URL { URL(filePath: archivePath, directoryHint: .isDirectory) }
    public var quarantineDirectory: URL { URL(filePath: quarantinePath, directoryHint: .isDirectory) }

    public init(root: URL) {
        self.root = root
        var base = root.path
        while base.count > 1, base.hasSuffix("/") { base.removeLast() }
        if base != "/" { base += "/" }
        newPath = base + "new/"; curPath = base + "cur/"; tmpPath = base + "tmp/"
        archivePath = base + "archive/"; quarantinePath = base + "quarantine/"
    }

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
        let target = curPath + base + ":2,"
        let source = newPath + name
        if Self.renameSerially(source, target) == 0 { return Claimed(name: base, file: target) }
        let err = errno
        if err == ENOENT { return nil }
        throw Failure(code: "maildir_claim", message: "cannot move \(source) to \(target): \(String(cString: strerror(err)))")
    }

    /// Claimed messages left in `cur/` (a crash between claim and archive), whose claim is
    /// older than `olderThan` seconds. The repair pass processes them again; every step is
    /// idempotent.
    public func staleClaims(olderThan seconds: TimeInterval, now: Date = Date()) throws(Failure) -> [Claimed] {
        var out: [Claimed] = []
        for name in try list(curDirectory) where name.hasSuffix(":2,") || name.contains(":2,") {
            let path = curPath + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let changed = Date(timeIntervalSince1970: TimeInterval(st.st_ctim.tv_sec))
            if now.timeIntervalSince(changed) >= seconds { out.append(Claimed(name: Self.baseName(name), file: path)) }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Takes over a stale claim by renaming it within `cur/` (so two repairing importers never
    /// both process it). Nil when someone else took it.
    public func reclaim(_ claimed: Claimed) throws(Failure) -> Claimed? {
        let target = curPath + claimed.name + ":2,R"
        if claimed.file == target {
            // Already ours from an earlier repair; touch it by renaming to the plain claim name.
            let back = curPath + claimed.name + ":2,"
            if rename(claimed.file, back) == 0 { return Claimed(name: claimed.name, file: back) }
        } else if rename(claimed.file, target) == 0 {
            return Claimed(name: claimed.name, file: target)
        }
        let err = errno
        if err == ENOENT { return nil }
        throw Failure(code: "maildir_claim", message: "cannot take over \(claimed.file): \(String(cString: strerror(err)))")
    }

    /// Reads a claimed message: at most `limit` bytes.
    public func read(_ claimed: Claimed, limit: Int = MIMELimits.standard.maxRawBytes + 1) throws(Failure) -> [UInt8] {
        let fd = open(claimed.file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(code: "maildir_read", message: "cannot open \(claimed.file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        // Sized from the file's length, plus one byte so a file still growing is read to the limit.
        let capacity = fstat(fd, &st) == 0 ? min(max(Int(st.st_size) + 1, 4096), max(limit, 0)) : 65_536
        var bytes = [UInt8](repeating: 0, count: capacity)
        var count = 0
        while count < limit {
            if count == bytes.count { bytes.append(contentsOf: repeatElement(0, count: min(bytes.count, limit - count))) }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n > 0 { count += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw Failure(code: "maildir_read", message: "cannot read \(claimed.file): \(String(cString: strerror(errno)))")
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Moves a claimed message to `archive/NAME`. Idempotent: a message already archived is fine.
    public func archive(_ claimed: Claimed) throws(Failure) {
        try move(claimed, to: archivePath)
    }

    /// Writes `quarantine/NAME.reason` (atomically) and then moves the message to
    /// `quarantine/NAME`. Idempotent: repeating it after a crash between the two steps is fine.
    public func quarantine(_ claimed: Claimed, reason: String) throws(Failure) {
        let reasonURL = URL(filePath: quarantinePath + claimed.name + ".reason", directoryHint: .notDirectory)
        do { try Data((reason + "\n").utf8).write(to: reasonURL, options: .atomic) } catch {
            throw Failure(code: "maildir_quarantine", message: "cannot write \(reasonURL.path): \(error.localizedDescription)")
        }
        try move(claimed, to: quarantinePath)
    }

    /// One `rename(2)`, with no `fsync` of the file or of either directory, on purpose: the
    /// store's transaction, committed before any move, is the durable record. If a crash loses
    /// a rename (claim or archive), the message is found again in `new/` or `cur/`, processed
    /// again, and its dedupe key makes that a no-op apart from the move — so an fsync per file
    /// (or per batch) would buy nothing but time. A rename is atomic, so a message is always
    /// in exactly one folder.
    private func move(_ claimed: Claimed, to directory: String) throws(Failure) {
        let target = directory + claimed.name
        if Self.renameSerially(claimed.file, target) == 0 { return }
        let err = errno
        if err == ENOENT, FileManager.default.fileExists(atPath: target) { return }   // already moved
        throw Failure(code: "maildir_move", message: "cannot move \(claimed.file) to \(target): \(String(cString: strerror(err)))")
    }

    /// Renames between directories one at a time in this process (errno as `rename(2)` leaves it).
    /// Linux serializes every cross-directory rename on a file system behind one kernel mutex, on
    /// which a second thread spins: the import's claims and moves run side by side, and the spinning
    /// cost more CPU than the renames' own work. Waiting here sleeps instead, leaving the core to
    /// the rest of the import.
    static func renameSerially(_ source: String, _ target: String) -> Int32 {
        renameLock.lock()
        let rc = rename(source, target)
        let err = errno
        renameLock.unlock()
        errno = err
        return rc
    }

    private static let renameLock = NSLock()

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
        let tmp = tmpPath + name
        do { try Data(bytes).write(to: URL(filePath: tmp, directoryHint: .notDirectory)) } catch {
            throw Failure(code: "maildir_deliver", message: "cannot write \(tmp): \(error.localizedDescription)")
        }
        if rename(tmp, newPath + name) != 0 {
            throw Failure(code: "maildir_deliver", message: "cannot move \(tmp) into new/: \(String(cString: strerror(errno)))")
        }
        return name
    }
}
