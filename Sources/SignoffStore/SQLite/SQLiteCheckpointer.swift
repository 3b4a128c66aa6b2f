import Dispatch
import Foundation

/// Copies the write-ahead log back into the database file on a thread of its own.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the WAL size limit, on the
/// single writer's thread, which is the store's bottleneck: every page copy and `fsync` of the
/// checkpoint delays all writes queued behind that commit. Here a second connection runs a PASSIVE
/// checkpoint every `interval` (it never waits for, or blocks, the writer or readers), so the
/// writer only appends to the log. The writer keeps a large automatic limit as a safety net in
/// case this one falls behind.
final class SQLiteCheckpointer: @unchecked Sendable {
    // @unchecked Sendable: `connection` and `timer` are only touched on the serial `queue`.
    private let queue = DispatchQueue(label: "signoff.store.sqlite.checkpoint")
    private let path: String
    private var connection: SQLiteConnection?
    private var timer: (any DispatchSourceTimer)?
    static let interval: DispatchTimeInterval = .milliseconds(100)

    init(path: String) {
        self.path = path
        queue.sync {
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + Self.interval, repeating: Self.interval)
            t.setEventHandler { [weak self] in self?.checkpoint() }
            t.resume()
            timer = t
        }
    }

    /// On the queue.
    private func checkpoint() {
        do {
            if connection == nil { connection = try SQLiteConnection(path: path) }
            try connection?.exec("PRAGMA wal_checkpoint(PASSIVE)")
        } catch {
            // Busy or gone for a moment: the next tick tries again (and the writer's own limit holds).
        }
    }

    /// Stops the timer and closes the connection. Idempotent.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.timer?.cancel()
                self.timer = nil
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }
}
