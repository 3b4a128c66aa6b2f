import Foundation
import SignoffStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What ended a worker's wait.
public enum WorkWake: String, Sendable {
    /// The store reported a change (NOTIFY on PostgreSQL, a new data_version on SQLite).
    case database
    /// A file landed in a watched folder (a reply in the maildrop's `new/`, a response file in the inbox's `new/`).
    case files
    /// Nothing happened before the timeout.
    case timeout
}

/// Wakes a waiting `signoff worker` at the first sign of new work: the store reporting a change,
/// or a file landing in the maildrop's or the inbox's `new/` — whichever comes first.
///
/// A reply delivered into the Maildir is not a database change, so without the folder watch the
/// worker would only see it at its next interval.
public final class WorkSignal: Sendable {
    private let store: any RunStore
    /// The folder watch over the `new/` folders.
    public let folders: FolderWatch

    /// Watches `directories` (created when missing) and the store's notifications.
    public init(store: any RunStore, directories: [String], forcePolling: Bool = false) {
        self.store = store
        self.folders = FolderWatch(directories: directories, forcePolling: forcePolling)
    }

    /// The signal of a worker: the store, and `new/` of `maildrop:` and `inbox:`. Only the `new/`
    /// folders are created, so they can be watched from the start (the importer still links the
    /// Maildirs' archive/ and quarantine/ to `archive:` and `quarantine:` on its first pass).
    /// `SIGNOFF_WATCH=poll` forces the portable polling watch.
    public static func forWorker(_ environment: RunnerEnvironment) -> WorkSignal {
        var directories: [String] = []
        for root in [environment.config.maildrop, environment.config.inbox] {
            let new = URL(fileURLWithPath: root).appendingPathComponent("new").path
            try? FileManager.default.createDirectory(atPath: new, withIntermediateDirectories: true)
            directories.append(new)
        }
        let poll = ProcessInfo.processInfo.environment["SIGNOFF_WATCH"] == "poll"
        return WorkSignal(store: environment.store, directories: directories, forcePolling: poll)
    }

    /// Waits up to `timeout` seconds; returns what came first. The loser of the race is cancelled.
    /// A store that fails to wait is treated as silent (the wait sleeps out the timeout, still
    /// woken by files), so a broken connection never turns the caller's loop into a busy spin.
    public func wait(timeout: Double) async -> WorkWake {
        let store = self.store
        let folders = self.folders
        return await withTaskGroup(of: WorkWake.self) { group in
            group.addTask {
                do {
                    if try await store.waitForWork(timeout: timeout) { return .database }
                } catch {
                    try? await Task.sleep(for: .milliseconds(Int64(max(0, timeout) * 1000)))
                }
                return .timeout
            }
            group.addTask { await folders.next() ? .files : .timeout }
            let first = await group.next() ?? .timeout
            group.cancelAll()
            // A file event that raced a database wake-up stays pending for the next wait.
            return first
        }
    }

    /// Stops the folder watch's thread.
    public func close() { folders.close() }
}

/// Reports files landing in folders. On Linux it uses inotify (IN_MOVED_TO, IN_CREATE,
/// IN_CLOSE_WRITE) read on a dedicated thread that blocks in poll(), never on Swift's cooperative
/// pool; where inotify is unavailable (or a folder cannot be watched) the same thread checks the
/// folders' modification times every 200 ms.
public final class FolderWatch: Sendable {
    /// Whether every folder is watched through inotify (false: polling).
    public let usesInotify: Bool
    private let mailbox = EventMailbox()
    private let wakeWrite: Int32
    private let closed = Atomic<Bool>(false)

    /// Starts watching; missing folders are polled until they appear.
    public init(directories: [String], forcePolling: Bool = false) {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeWrite = fds[1]
        var inotifyFD: Int32 = -1
        var polled = directories
        #if os(Linux)
        if !forcePolling {
            inotifyFD = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
            if inotifyFD >= 0 {
                let mask = UInt32(IN_MOVED_TO) | UInt32(IN_CREATE) | UInt32(IN_CLOSE_WRITE)
                polled = directories.filter { inotify_add_watch(inotifyFD, $0, mask) < 0 }
                if polled.count == directories.count {
                    Glibc.close(inotifyFD)
                    inotifyFD = -1
                }
            }
        }
        #endif
        usesInotify = inotifyFD >= 0 && polled.isEmpty
        let loop = WatchLoop(inotifyFD: inotifyFD, wakeRead: fds[0], polled: polled, mailbox: mailbox)
        let thread = Thread { loop.run() }
        thread.name = "signoff.folder-watch"
        thread.start()
    }

    deinit { close() }

    /// Waits for the next file event (true), or returns false when the calling task is cancelled
    /// or the watch is closed. An event that arrived while nobody waited is returned at once.
    public func next() async -> Bool {
        await mailbox.next()
    }

    /// Stops the watching thread (idempotent).
    public func close() {
        if closed.exchange(true, ordering: .sequentiallyConsistent) { return }
        // Closing the write end wakes the thread's poll() with a hang-up; it then closes its descriptors.
        if wakeWrite >= 0 { _ = Foundation.close(wakeWrite) }
        mailbox.shutDown()
    }
}

/// One pending flag and at most one waiter, shared by the watching thread and the async side.
final class EventMailbox: Sendable {
    private struct State {
        var pending = false
        var shut = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Bool, Never>)?
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Called by the watching thread for each batch of events.
    func fire() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w.continuation
            }
            s.pending = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    func shutDown() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.shut = true
            defer { s.waiter = nil }
            return s.waiter?.continuation
        }
        waiter?.resume(returning: false)
    }

    func next() async -> Bool {
        let id = state.withLock { s -> UInt64 in
            s.nextID &+= 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let (resumeWith, replaced) = state.withLock { s -> (Bool?, CheckedContinuation<Bool, Never>?) in
                    if s.pending {
                        s.pending = false
                        return (true, nil)
                    }
                    if s.shut || Task.isCancelled { return (false, nil) }
                    let old = s.waiter?.continuation
                    s.waiter = (id, continuation)
                    return (nil, old)
                }
                replaced?.resume(returning: false)
                if let resumeWith { continuation.resume(returning: resumeWith) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return w.continuation
            }
            waiter?.resume(returning: false)
        }
    }
}

/// The watching thread's loop: poll() on the inotify descriptor and the wake-up pipe, with a
/// 200 ms timeout when some folders are polled by modification time.
private struct WatchLoop: Sendable {
    let inotifyFD: Int32
    let wakeRead: Int32
    let polled: [String]
    let mailbox: EventMailbox

    static let pollMilliseconds: Int32 = 200

    /// A folder's modification and change times in nanoseconds, nil when it does not exist.
    static func stamp(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec),
                Int(info.st_ino)]
    }

    func run() {
        defer {
            if inotifyFD >= 0 { _ = close(inotifyFD) }
            if wakeRead >= 0 { _ = close(wakeRead) }
        }
        if wakeRead < 0 && inotifyFD < 0 && polled.isEmpty { return }
        var stamps = polled.map(Self.stamp)
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), polled.isEmpty ? -1 : Self.pollMilliseconds)
            if rc < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }  // closed: the write end hung up
            var fired = false
            if fds.count > 1, fds[1].revents != 0 {
                // Drain every queued event; one wake-up covers them all.
                while read(inotifyFD, &buffer, buffer.count) > 0 { fired = true }
            }
            if !polled.isEmpty {
                let now = polled.map(Self.stamp)
                if now != stamps {
                    stamps = now
                    fired = true
                }
            }
            if fired { mailbox.fire() }
        }
    }
}
