import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoints as JSON files: `DIRECTORY/RUN/SUPERSTEP-SEQUENCE-ID.json`.
///
/// Writes are verified (a checkpoint whose bytes do not decode back is refused, never written) and
/// atomic: each file is written under a hidden temporary name, made durable, then renamed into
/// place, and the folder is synced after the renames. File work runs on a private dispatch queue,
/// not on Swift's cooperative pool.
///
/// Group commit (`groupCommit`, on by default): the engine hands a run's checkpoints over without
/// waiting, and each `save(batch:)` commits everything queued at once: all temporary files are
/// written, made durable together (one `syncfs` of the file system on Linux, else one `fsync` per
/// file; a batch of one checkpoint fsyncs just its file), renamed in order, then the folder is
/// synced once. A superstep therefore costs one file write, not two disk flushes. What a crash can lose: at most the checkpoints of the batch in
/// flight (a run call never returns before its checkpoints are durable). What it cannot do: leave a
/// torn checkpoint (only complete, synced files are ever renamed into place; an interrupted write
/// leaves a hidden `.tmp` file that listing ignores) or lose an older, already durable one. Names
/// sort in save order, so `list` and `latest` keep the run's order. A failed batch is rolled back
/// (its renamed files removed) and nothing after it is saved.
public struct FileCheckpointStorage: CheckpointStorage {
    /// The folder holding one sub-folder per run.
    public var directory: URL { URL(fileURLWithPath: root, isDirectory: true) }
    private let root: String
    /// Whether writes are synced to the disk (durable across a power cut). On by default; off, a
    /// crash of the machine (not of the process) can lose or tear recent checkpoints.
    public let durable: Bool
    /// Whether the engine may pipeline saves to this storage (see `CheckpointStorage`). On by
    /// default; off, every superstep waits for its own checkpoint to be durable.
    public let groupCommit: Bool
    private let queue: DispatchQueue

    /// Opens (creating if needed) a checkpoint folder.
    public init(directory: URL, durable: Bool = true, groupCommit: Bool = true) throws {
        self.root = directory.path
        self.durable = durable
        self.groupCommit = groupCommit
        self.queue = DispatchQueue(label: "signoff.checkpoints.file")
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw WorkflowError(.storageFailed, "cannot create checkpoint folder \(directory.path): \(error.localizedDescription)")
        }
        Self.markTopOfHierarchy(directory.path)
    }

    /// Best effort, Linux ext2/3/4 only: flags the folder as the top of a directory hierarchy
    /// (`chattr +T`), so the file system places each run's sub-folder in a block group of its own
    /// instead of next to the parent. New files then come from a group where few inodes were
    /// recently freed; without a journal, ext4 skips such inodes one by one on every file it
    /// creates, which in a folder shared with busy neighbours costs up to a millisecond per file.
    /// Other file systems refuse the request and nothing changes.
    static func markTopOfHierarchy(_ path: String) {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        // FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (64-bit encodings) and FS_TOPDIR_FL.
        let getFlags: UInt = 0x8008_6601, setFlags: UInt = 0x4008_6602, topDir: Int32 = 0x0002_0000
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var flags: Int32 = 0
        guard ioctl(fd, getFlags, &flags) == 0, flags & topDir == 0 else { return }
        flags |= topDir
        _ = ioctl(fd, setFlags, &flags)
        #endif
    }

    /// Saves one checkpoint; durable (when `durable`) when it returns.
    public func save(_ checkpoint: Checkpoint) async throws {
        try await save(batch: [checkpoint])
    }

    /// Saves checkpoints in order as one commit (see the type's documentation).
    public func save(batch: [Checkpoint]) async throws {
        guard !batch.isEmpty else { return }
        // Encoding (here) overlaps with writing the previous chunk's files (on the queue).
        let writer = BatchWriter(durable: durable, count: batch.count)
        var start = batch.startIndex
        while start < batch.endIndex {
            let end = min(start + 32, batch.endIndex)
            var files: [PendingFile] = []
            files.reserveCapacity(end - start)
            do {
                for checkpoint in batch[start..<end] {
                    let data = try checkpoint.encoded()
                    // Never write what cannot be read back.
                    try Checkpoint.verify(data, against: checkpoint)
                    let runDir = root + "/" + Self.safe(checkpoint.runID)
                    // Superstep, then save time (wall clock, strictly increasing in this process),
                    // so names sort in save order even across processes.
                    let name = Self.padded(UInt64(max(0, checkpoint.superstep)), 12) + "-" + Self.padded(Self.nextStamp(), 20) + "-"
                        + Self.safe(checkpoint.id) + ".json"
                    files.append(PendingFile(dir: runDir, name: name, data: data))
                }
            } catch {
                try? await onQueue { writer.abandon() }
                throw error
            }
            let chunk = files
            queue.async { writer.write(chunk) }
            start = end
        }
        try await onQueue { try writer.commit() }
    }

    public func load(id: String) async throws -> Checkpoint? {
        guard let url = try await onQueue({ try self.find(id: id) }) else { return nil }
        return try await read(url)
    }

    public func latest(runID: String) async throws -> Checkpoint? {
        guard let url = try await onQueue({ try self.files(runID: runID).last }) else { return nil }
        return try await read(url)
    }

    public func list(runID: String) async throws -> [Checkpoint] {
        var out: [Checkpoint] = []
        for url in try await onQueue({ try self.files(runID: runID) }) { out.append(try await read(url)) }
        return out
    }

    public func delete(id: String) async throws {
        try await onQueue {
            if let path = try self.find(id: id) { try FileManager.default.removeItem(atPath: path) }
        }
    }

    // MARK: Files

    private func read(_ path: String) async throws -> Checkpoint {
        let data = try await onQueue { try Data(contentsOf: URL(fileURLWithPath: path)) }
        return try Checkpoint.decode(from: data)
    }

    private func files(runID: String) throws -> [String] {
        let runDir = root + "/" + Self.safe(runID)
        guard FileManager.default.fileExists(atPath: runDir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: runDir)
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .sorted()
            .map { runDir + "/" + $0 }
    }

    private func find(id: String) throws -> String? {
        let suffix = "-" + Self.safe(id) + ".json"
        for run in try FileManager.default.contentsOfDirectory(atPath: root) where !run.hasPrefix(".") {
            let runDir = root + "/" + run
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: runDir) else { continue }
            if let n = names.first(where: { $0.hasSuffix(suffix) }) { return runDir + "/" + n }
        }
        return nil
    }

    /// Keeps file names to a safe alphabet (ids come from the host).
    static func safe(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                out.append(Character(UnicodeScalar(b)))
            default:
                out += "_" + padded(UInt64(b), 2, radix: 16)
            }
        }
        return out
    }

    static func padded(_ v: UInt64, _ width: Int, radix: Int = 10) -> String {
        let digits = String(v, radix: radix)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static let lastStamp = Mutex<UInt64>(0)

    /// Microseconds since 1970, strictly increasing within this process.
    static func nextStamp() -> UInt64 {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
        return lastStamp.withLock { last in
            last = max(last + 1, now)
            return last
        }
    }

    struct PendingFile: Sendable {
        var dir: String
        var name: String
        var data: Data
    }

    /// One batch's files, written chunk by chunk, then committed. Confined to the storage's serial
    /// queue: every method runs there, in order.
    final class BatchWriter: @unchecked Sendable {
        // @unchecked: only ever touched from the storage's serial dispatch queue.
        let durable: Bool
        /// A batch of several files is synced with one `syncfs`; a single file with its `fsync`
        /// (which flushes only that file).
        let syncWhole: Bool
        var written: [PendingFile] = []
        var dirs: [String] = []
        var failure: WorkflowError?
        /// Opened before the first write, so `syncfs` reports any write-back error since then.
        var syncHandle: Int32 = -1

        init(durable: Bool, count: Int) {
            self.durable = durable
            syncWhole = durable && count > 1 && syncFileSystem != nil
        }

        deinit { if syncHandle >= 0 { close(syncHandle) } }

        /// Writes (and, without syncfs, fsyncs) the files under temporary names.
        func write(_ files: [PendingFile]) {
            guard failure == nil else { return }
            do {
                for f in files {
                    if !dirs.contains(f.dir) {
                        if mkdir(f.dir, 0o755) != 0 && errno != EEXIST { throw posixError("mkdir \(f.dir)") }
                        dirs.append(f.dir)
                    }
                    if syncWhole && syncHandle < 0 {
                        syncHandle = open(f.dir, O_RDONLY | O_CLOEXEC)
                        guard syncHandle >= 0 else { throw posixError("open folder \(f.dir)") }
                    }
                    let tmp = f.dir + "/." + f.name + ".tmp"
                    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                    guard fd >= 0 else { throw posixError("open \(tmp)") }
                    written.append(f)
                    var ok = false
                    defer { if !ok { close(fd) } }
                    try writeAll(fd, f.data, path: tmp)
                    if durable && !syncWhole && fsync(fd) != 0 { throw posixError("fsync \(tmp)") }
                    ok = true
                    guard close(fd) == 0 else { throw posixError("close \(tmp)") }
                }
            } catch {
                failure = error as? WorkflowError ?? WorkflowError(.storageFailed, "\(error)")
            }
        }

        /// Removes the temporary files (a later chunk could not be encoded).
        func abandon() {
            for f in written { unlink(f.dir + "/." + f.name + ".tmp") }
            written.removeAll()
        }

        /// Syncs the temporary files, renames them in order, syncs their folders. On failure
        /// removes everything this batch wrote (temporary and renamed files) and throws.
        func commit() throws {
            var renamed = 0
            var committed = false
            defer {
                if !committed {
                    for f in written[..<renamed] { unlink(f.dir + "/" + f.name) }
                    for f in written[renamed...] { unlink(f.dir + "/." + f.name + ".tmp") }
                }
            }
            if let failure { throw failure }
            if syncWhole, let syncfs = syncFileSystem {
                // Every temporary file's bytes are on the disk before any gets its final name.
                if syncfs(syncHandle) != 0 { throw posixError("syncfs \(dirs[0])") }
            }
            for f in written {
                guard rename(f.dir + "/." + f.name + ".tmp", f.dir + "/" + f.name) == 0 else {
                    throw posixError("rename to \(f.dir)/\(f.name)")
                }
                renamed += 1
            }
            if durable {
                for dir in dirs {
                    let dfd = open(dir, O_RDONLY | O_CLOEXEC)
                    guard dfd >= 0 else { throw posixError("open folder \(dir)") }
                    defer { close(dfd) }
                    if fsync(dfd) != 0 { throw posixError("fsync folder \(dir)") }
                }
            }
            committed = true
        }
    }

    private static func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; throw posixError("write \(path)") }
                off += n
            }
        }
    }

    #if os(Linux)
    /// `syncfs(2)`: one flush of the whole file system instead of one per file. Looked up at run
    /// time (Glibc's Swift module does not export it); nil where the C library lacks it.
    private static let syncFileSystem: (@convention(c) (Int32) -> Int32)? = {
        guard let sym = dlsym(nil, "syncfs") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32) -> Int32).self)
    }()
    #else
    private static let syncFileSystem: (@convention(c) (Int32) -> Int32)? = nil
    #endif

    private static func posixError(_ what: String) -> WorkflowError {
        WorkflowError(.storageFailed, "\(what) failed: \(String(cString: strerror(errno)))")
    }

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try work() }) }
        }
    }
}
