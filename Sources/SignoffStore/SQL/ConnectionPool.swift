import Dispatch
import Foundation
import Synchronization

/// One connection and the serial queue it lives on. Blocking C calls run on that queue, never on
/// Swift's cooperative pool; callers await them through a continuation.
final class ConnectionHandle: @unchecked Sendable {
    // @unchecked Sendable: `connection` is only touched inside blocks on the serial `queue`.
    private let queue: DispatchQueue
    private var connection: (any SQLConnection)?
    private let factory: @Sendable () throws -> any SQLConnection
    let inFlight = Atomic<Int>(0)

    init(label: String, factory: @escaping @Sendable () throws -> any SQLConnection) {
        self.queue = DispatchQueue(label: label)
        self.factory = factory
    }

    /// Opens the connection now (so connection errors surface at open time).
    func connect() async throws {
        try await perform { _ in () }
    }

    /// Runs `body` on the connection's queue. A broken PostgreSQL connection is reset once first;
    /// if `body` fails because the connection broke before anything was committed, it is retried once
    /// on a reset connection, otherwise the error is returned.
    func perform<T: Sendable>(retryable: Bool = true, _ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            queue.async {
                continuation.resume(with: Result { try self.runLocked(retryable: retryable, body) })
            }
        }
    }

    private func runLocked<T>(retryable: Bool, _ body: (any SQLConnection) throws -> T) throws -> T {
        let conn: any SQLConnection
        if let existing = connection {
            conn = existing
            if conn.isBroken() { try conn.reset() }
        } else {
            conn = try factory()
            connection = conn
        }
        do {
            return try body(conn)
        } catch let unknown as CommitOutcomeUnknown {
            throw unknown.error
        } catch let error as StoreError where error.code == .connectionLost && retryable {
            // The server went away (restart, failover) before COMMIT was sent, so the server rolled
            // the attempt back: reconnect once and try again; it cannot apply anything twice.
            try conn.reset()
            do {
                return try body(conn)
            } catch let unknown as CommitOutcomeUnknown {
                throw unknown.error
            }
        }
    }

    /// Closes the connection (after anything queued before it). Idempotent.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }
}

/// The connection broke during COMMIT: never retried, since it may have been applied.
struct CommitOutcomeUnknown: Error {
    var error: StoreError
}

/// Transaction helpers run on a connection's queue.
extension SQLConnection {
    /// Runs `body` in a transaction; rolls back on error. Errors from COMMIT itself are not retried
    /// (the outcome is unknown), so they are reported as `connectionLost` without a retry marker.
    func transaction<T>(write: Bool, _ body: () throws -> T) throws -> T {
        try begin(write: write)
        let value: T
        do {
            value = try body()
        } catch {
            rollback()
            throw error
        }
        do {
            try commit()
        } catch let error as StoreError where error.code == .connectionLost {
            throw CommitOutcomeUnknown(error: StoreError(.connectionLost, error.message + "; the outcome of the last commit is unknown, check the run before retrying"))
        } catch {
            rollback()
            throw error
        }
        return value
    }
}

/// A fixed set of connections; each operation goes to the least busy one.
final class ConnectionPool: Sendable {
    let handles: [ConnectionHandle]
    private let closed = Atomic<Bool>(false)

    init(handles: [ConnectionHandle]) {
        precondition(!handles.isEmpty)
        self.handles = handles
    }

    private func pick() throws -> ConnectionHandle {
        if closed.load(ordering: .relaxed) { throw StoreError(.closed, "the store is closed") }
        var best = handles[0]
        var load = best.inFlight.load(ordering: .relaxed)
        if load == 0 { return best }
        for h in handles.dropFirst() {
            let l = h.inFlight.load(ordering: .relaxed)
            if l < load { best = h; load = l; if l == 0 { break } }
        }
        return best
    }

    /// Runs `body` in a write transaction (BEGIN IMMEDIATE on SQLite).
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pick().perform { conn in try conn.transaction(write: true) { try body(conn) } }
    }

    /// Runs `body` in a read transaction.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pick().perform { conn in try conn.transaction(write: false) { try body(conn) } }
    }

    /// Runs `body` outside a transaction (it manages its own).
    func raw<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pick().perform(body)
    }

    func close() async {
        if closed.exchange(true, ordering: .relaxed) { return }
        for h in handles { await h.close() }
    }
}
