import CLibpq
import Dispatch
import Foundation
import Synchronization

/// Something a worker can block on until the database may hold new work.
protocol WorkWaiter: Sendable {
    /// True when woken by a change, false when `timeout` passed (or the wait was cancelled).
    func wait(timeout: Double) async throws -> Bool
    func close() async
}

/// The PostgreSQL channel the store notifies in every transaction that makes a run runnable or queues mail.
let workChannel = "signoff_work"

/// SQLite: polls `PRAGMA data_version` on a connection of its own every 50 ms. The counter moves
/// whenever another connection (this process's writer included) commits a change.
final class SQLiteChangeWatcher: WorkWaiter {
    private let handle: ConnectionHandle
    private let lastVersion = Mutex<Int64?>(nil)
    static let pollInterval: Duration = .milliseconds(50)

    init(path: String) {
        handle = ConnectionHandle(label: "signoff.store.sqlite.watch") { try SQLiteConnection(path: path) }
    }

    private func changed() async throws -> Bool {
        let version = try await handle.perform { conn in try conn.query("PRAGMA data_version").first?.int64(0) ?? 0 }
        return lastVersion.withLock { last in
            defer { last = version }
            return last.map { $0 != version } ?? false
        }
    }

    func wait(timeout: Double) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(max(0, timeout) * 1000)))
        while true {
            if try await changed() { return true }
            let now = clock.now
            if now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: min(Self.pollInterval, now.duration(to: deadline)))
        }
    }

    func close() async { await handle.close() }
}

/// PostgreSQL: `LISTEN signoff_work` on a connection of its own. Each wait runs on a private serial
/// queue (never on Swift's cooperative pool) and blocks in poll() on the connection's socket and a
/// wake-up pipe; task cancellation and `close` write to the pipe.
final class PostgresWorkListener: WorkWaiter, @unchecked Sendable {
    // @unchecked Sendable: `conn` and `everConnected` are only touched on the serial `queue`; the pipe descriptors never change.
    private let queue = DispatchQueue(label: "signoff.store.pg.listen")
    private var conn: OpaquePointer?
    private var everConnected = false
    private let conninfo: String
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let closed = Atomic<Bool>(false)

    init(conninfo: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw StoreError(.connectionFailed, "could not create a pipe to wait for PostgreSQL notifications: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        self.conninfo = conninfo
    }

    deinit {
        if let conn { PQfinish(conn) }
        Foundation.close(wakeRead)
        Foundation.close(wakeWrite)
    }

    func wait(timeout: Double) async throws -> Bool {
        if closed.load(ordering: .relaxed) { throw StoreError(.closed, "the store is closed") }
        let cancelled = Flag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                queue.async {
                    continuation.resume(with: Result { try self.blockingWait(timeout: timeout, cancelled: cancelled) })
                }
            }
        } onCancel: {
            cancelled.set()
            self.poke()
        }
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func drainPipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// Opens the listening connection; false when the server cannot be reached.
    private func connect() -> Bool {
        let handle = PQconnectdb(conninfo)
        guard PQstatus(handle) == CONNECTION_OK else {
            PQfinish(handle)
            return false
        }
        let res = PQexec(handle, "LISTEN \(workChannel)")
        let ok = PQresultStatus(res) == PGRES_COMMAND_OK
        PQclear(res)
        guard ok else {
            PQfinish(handle)
            return false
        }
        conn = handle
        return true
    }

    private static func nowNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// On the queue: blocks until a notification, the deadline, cancellation or close.
    private func blockingWait(timeout: Double, cancelled: Flag) throws -> Bool {
        let deadline = Self.nowNanoseconds() + UInt64(max(0, timeout) * 1e9)
        func remainingMilliseconds() -> Int32 {
            let now = Self.nowNanoseconds()
            return now >= deadline ? 0 : Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
        }
        func stop() -> Bool { cancelled.isSet || closed.load(ordering: .relaxed) }
        if conn == nil {
            if !stop(), connect() {
                // Notifications sent while nobody listened are lost: have the caller look.
                if everConnected { return true }
                everConnected = true
            } else {
                // The server is unreachable: sleep (interruptibly) and let the caller's pass report it.
                while !stop(), remainingMilliseconds() > 0 {
                    var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
                    _ = poll(&fd, 1, remainingMilliseconds())
                    drainPipe()
                }
                if closed.load(ordering: .relaxed) { throw StoreError(.closed, "the store is closed") }
                return false
            }
        }
        guard let conn else { return false }
        while true {
            if closed.load(ordering: .relaxed) { throw StoreError(.closed, "the store is closed") }
            if cancelled.isSet { return false }
            if PQconsumeInput(conn) == 0 {
                // The connection broke: reconnect on the next wait, and have the caller look now.
                PQfinish(conn)
                self.conn = nil
                return true
            }
            var notified = false
            while let note = PQnotifies(conn) {
                PQfreemem(note)
                notified = true
            }
            if notified { return true }
            let ms = remainingMilliseconds()
            if ms == 0 { return false }
            var fds = [pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let rc = poll(&fds, 2, ms)
            if rc < 0 && errno != EINTR { return false }
            if fds[1].revents != 0 { drainPipe() }
        }
    }

    func close() async {
        if closed.exchange(true, ordering: .relaxed) { return }
        poke()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                if let conn = self.conn { PQfinish(conn) }
                self.conn = nil
                continuation.resume()
            }
        }
    }
}

/// A flag set once from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
