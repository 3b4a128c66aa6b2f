import Dispatch
import Foundation

/// Copies the write-ahead log back into the database file on a thread of its own.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the WAL size limit, on the
/// single writer's thread, which is the store's bottleneck: every page copy and `fsync` of the
/// checkpoint delays all writes queued behind that commit. Here a second connection runs a PASSIVE
/// checkpoint (it never waits for, or blocks, the writer or readers) every 100 ms while the
/// database changes, backing off to once a second while it does not, so the writer only appends
/// to the log. The writer keeps a large automatic limit as a safety net in case this one falls behind.
final class SQLiteCheckpointer: @unchecked Sendable {
    // @unchecked Sendable: `connection`, `lastVersion`, `delay` and `closed` are only touched on the serial `queue`.
    private let queue = DispatchQueue(label: "signoff.store.sqlite.checkpoint")
    private let path: String
    private var connection: SQLiteConnection?
    private var lastVersion: Int64?
    private var delay = SQLiteCheckpointer.busyInterval
    private var closed = false
    static let busyInterval = 100
    static let idleInterval = 1000

    init(path: String) {
        self.path = path
        scheduleNext()
    }

    /// On the queue (or from init, before anything else can run there).
    private func scheduleNext() {
        queue.asyncAfter(deadline: .now() + .milliseconds(delay)) { [weak self] in self?.tick() }
    }

    /// On the queue.
    private func tick() {
        if closed { return }
        do {
            if connection == nil { connection = try SQLiteConnection(path: path) }
            if let conn = connection {
                // `data_version` moves when another connection (the writer) committed since we looked.
                let version = try conn.query("PRAGMA data_version", []).first?.int64(0)
                if version != lastVersion {
                    lastVersion = version
                    try conn.exec("PRAGMA wal_checkpoint(PASSIVE)")
                    delay = Self.busyInterval
                } else {
                    delay = min(Self.idleInterval, delay * 2)
                }
            }
        } catch {
            // Busy or gone for a moment: the next tick tries again (and the writer's own limit holds).
        }
        scheduleNext()
    }

    /// Stops checkpointing and closes the connection. Idempotent.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.closed = true
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }
}
