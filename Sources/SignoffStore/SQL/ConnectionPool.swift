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
    /// Write transactions waiting for a group commit (SQLite).
    private let groupQueue = Mutex<[GroupedWrite]>([])
    private let drainScheduled = Atomic<Bool>(false)
    /// Most operations one group commit takes.
    static let maxGroup = 64

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

    /// Runs `body` in a read transaction on this connection.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await perform { conn in try conn.transaction(write: false) { try body(conn) } }
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

    /// Runs `body` as its own write transaction, committed together with the other write
    /// transactions queued on this connection at the same moment (group commit).
    ///
    /// Each operation runs inside its own SAVEPOINT, so one that throws is rolled back alone and
    /// the others still commit; callers hear back only after the shared COMMIT. With one writer
    /// connection (SQLite) this turns many small commits (each writing the same B-tree pages to
    /// the WAL) into one.
    func groupedWrite<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let box = ResultBox<T>()
            let op = GroupedWrite(
                execute: { conn in
                    box.result = Result { try body(conn) }
                    if case .success = box.result { return true }
                    return false
                },
                complete: { commitError in
                    if let commitError, case .success = box.result {
                        continuation.resume(throwing: commitError)
                    } else {
                        continuation.resume(with: box.result ?? .failure(StoreError(.queryFailed, "the operation did not run")))
                    }
                })
            groupQueue.withLock { $0.append(op) }
            scheduleDrain()
        }
    }

    private func scheduleDrain() {
        if drainScheduled.exchange(true, ordering: .acquiringAndReleasing) { return }
        queue.async { self.drain() }
    }

    /// On the queue: commits everything queued so far, in groups.
    private func drain() {
        while true {
            drainScheduled.store(false, ordering: .sequentiallyConsistent)
            let ops: [GroupedWrite] = groupQueue.withLock { pending in
                let taken = Array(pending.prefix(Self.maxGroup))
                pending.removeFirst(taken.count)
                return taken
            }
            if ops.isEmpty { return }
            runGroup(ops)
            // More arrived while we worked: keep going unless someone else scheduled a drain.
            if groupQueue.withLock({ $0.isEmpty }) { return }
            if drainScheduled.exchange(true, ordering: .acquiringAndReleasing) { return }
        }
    }

    private func runGroup(_ ops: [GroupedWrite]) {
        let conn: any SQLConnection
        do {
            if let existing = connection {
                conn = existing
                if conn.isBroken() { try conn.reset() }
            } else {
                conn = try factory()
                connection = conn
            }
        } catch {
            for op in ops { op.failBeforeRun(error) }
            return
        }
        if ops.count == 1 {
            do {
                try conn.begin(write: true)
            } catch {
                ops[0].failBeforeRun(error)
                return
            }
            if ops[0].execute(conn) {
                do { try conn.commit(); ops[0].complete(nil) } catch { conn.rollback(); ops[0].complete(error) }
            } else {
                conn.rollback()
                ops[0].complete(nil)
            }
            return
        }
        do {
            try conn.begin(write: true)
        } catch {
            for op in ops { op.failBeforeRun(error) }
            return
        }
        for op in ops {
            do {
                try conn.exec("SAVEPOINT signoff_op")
                if op.execute(conn) {
                    try conn.exec("RELEASE signoff_op")
                } else {
                    try conn.exec("ROLLBACK TO signoff_op")
                    try conn.exec("RELEASE signoff_op")
                }
            } catch {
                // The savepoint machinery itself failed: give up the whole group.
                conn.rollback()
                for op in ops { op.complete(error) }
                return
            }
        }
        do {
            try conn.commit()
            for op in ops { op.complete(nil) }
        } catch {
            conn.rollback()
            for op in ops { op.complete(error) }
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

/// One operation waiting for a group commit.
struct GroupedWrite: Sendable {
    /// Runs the operation; false when it threw (its savepoint is rolled back).
    let execute: @Sendable (any SQLConnection) -> Bool
    /// Reports back: nil when the shared COMMIT succeeded, else its error.
    let complete: @Sendable ((any Error)?) -> Void

    func failBeforeRun(_ error: any Error) {
        _ = execute(FailingConnection(error: error))
        complete(nil)
    }
}

/// Stands in for a connection that could not be opened: every call throws its error.
private final class FailingConnection: SQLConnection {
    let error: any Error
    init(error: any Error) { self.error = error }
    var dialect: SQLDialect { .sqlite }
    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow] { throw error }
    func exec(_ sql: String) throws { throw error }
    func begin(write: Bool) throws { throw error }
    func commit() throws { throw error }
    func rollback() {}
    func isBroken() -> Bool { true }
    func reset() throws { throw error }
    func close() {}
}

/// A result slot written and read only on a connection's serial queue.
final class ResultBox<T>: @unchecked Sendable {
    // @unchecked Sendable: written by `execute` and read by `complete`, both on the same serial queue.
    var result: Result<T, any Error>?
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

    init(handles: [ConnectionHandle], groupCommit: Bool = false) {
        precondition(!handles.isEmpty)
        self.handles = handles
        self.groupCommit = groupCommit
    }

    var isClosed: Bool { closed.load(ordering: .relaxed) }

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

    /// Whether concurrent write transactions share one commit (SQLite's single writer).
    let groupCommit: Bool

    /// Runs `body` in a write transaction (BEGIN IMMEDIATE on SQLite, group-committed there).
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        let handle = try pick()
        if groupCommit { return try await handle.groupedWrite(body) }
        return try await handle.perform { conn in try conn.transaction(write: true) { try body(conn) } }
    }

    /// Runs `body` in a read transaction.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pick().read(body)
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
