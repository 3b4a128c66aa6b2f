import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoints as JSON files: `DIRECTORY/RUN/SUPERSTEP-SEQUENCE-ID.json`.
///
/// Writes are atomic (temporary file, fsync, rename, fsync of the folder) and verified: a
/// checkpoint whose bytes do not decode back is refused, never written. File work runs on a
/// private dispatch queue, not on Swift's cooperative pool.
public struct FileCheckpointStorage: CheckpointStorage {
    /// The folder holding one sub-folder per run.
    public var directory: URL { URL(fileURLWithPath: root, isDirectory: true) }
    private let root: String
    /// Whether writes are fsync'd (durable across a power cut). On by default.
    public let durable: Bool
    private let queue: DispatchQueue

    /// Opens (creating if needed) a checkpoint folder.
    public init(directory: URL, durable: Bool = true) throws {
        self.root = directory.path
        self.durable = durable
        self.queue = DispatchQueue(label: "signoff.checkpoints.file")
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw WorkflowError(.storageFailed, "cannot create checkpoint folder \(directory.path): \(error.localizedDescription)")
        }
    }

    public func save(_ checkpoint: Checkpoint) async throws {
        let data = try checkpoint.encoded()
        // Never write what cannot be read back.
        let back = try Checkpoint.decode(from: data)
        guard back.id == checkpoint.id, back.messagesInFlight == checkpoint.messagesInFlight,
              back.pendingRequests.count == checkpoint.pendingRequests.count else {
            throw WorkflowError(.checkpointEncoding, "checkpoint \(checkpoint.id) does not read back as written; not saved")
        }
        let runDir = root + "/" + Self.safe(checkpoint.runID)
        // Superstep, then save time (wall clock, strictly increasing in this process), so names sort
        // in save order even across processes.
        let name = Self.padded(UInt64(max(0, checkpoint.superstep)), 12) + "-" + Self.padded(Self.nextStamp(), 20) + "-"
            + Self.safe(checkpoint.id) + ".json"
        let durable = self.durable
        try await onQueue {
            if mkdir(runDir, 0o755) != 0 && errno != EEXIST { throw Self.posixError("mkdir \(runDir)") }
            try Self.atomicWrite(data, dir: runDir, name: name, durable: durable)
        }
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

    static func atomicWrite(_ data: Data, dir: String, name: String, durable: Bool) throws {
        let target = dir + "/" + name
        let tmp = dir + "/." + name + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw posixError("open \(tmp)") }
        var ok = false
        defer { if !ok { close(fd); unlink(tmp) } }
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; throw posixError("write \(tmp)") }
                off += n
            }
        }
        if durable && fsync(fd) != 0 { throw posixError("fsync \(tmp)") }
        ok = true
        guard close(fd) == 0 else { unlink(tmp); throw posixError("close \(tmp)") }
        guard rename(tmp, target) == 0 else { unlink(tmp); throw posixError("rename to \(target)") }
        if durable {
            let dfd = open(dir, O_RDONLY)
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        }
    }

    private static func posixError(_ what: String) -> WorkflowError {
        WorkflowError(.storageFailed, "\(what) failed: \(String(cString: strerror(errno)))")
    }

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try work() }) }
        }
    }
}
