import Foundation

/// An error from the run store: a stable code and a message that says what happened and what to do.
///
/// Messages never contain passwords: connection strings are redacted before they are quoted.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// Stable, machine-readable kinds of store failure.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The database URL or keyword string cannot be understood.
        public static let invalidURL = Code(rawValue: "invalid_url")
        /// The server could not be reached or refused the connection.
        public static let connectionFailed = Code(rawValue: "connection_failed")
        /// The connection broke during an operation and could not be re-established in time.
        public static let connectionLost = Code(rawValue: "connection_lost")
        /// The database schema is newer than this binary understands.
        public static let schemaTooNew = Code(rawValue: "schema_too_new")
        /// A migration failed.
        public static let migrationFailed = Code(rawValue: "migration_failed")
        /// A SQL statement failed (the message carries the database's text).
        public static let queryFailed = Code(rawValue: "query_failed")
        /// The database was busy or locked for longer than the busy timeout.
        public static let busy = Code(rawValue: "busy")
        /// No run, request or row with that id.
        public static let notFound = Code(rawValue: "not_found")
        /// The caller's lease on a run is gone (expired and claimed by another runner, or the run changed state).
        public static let leaseLost = Code(rawValue: "lease_lost")
        /// The request was already decided (or expired / cancelled); the answer changed nothing.
        public static let alreadyDecided = Code(rawValue: "already_decided")
        /// This reviewer already voted on the request; the second vote changed nothing.
        public static let alreadyVoted = Code(rawValue: "already_voted")
        /// The operation is not allowed in the run's or request's current state.
        public static let invalidState = Code(rawValue: "invalid_state")
        /// The store was closed.
        public static let closed = Code(rawValue: "closed")
        /// Stored data could not be decoded.
        public static let corrupt = Code(rawValue: "corrupt")
        /// The file system holding the database is full: nothing was written.
        public static let diskFull = Code(rawValue: "disk_full")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened and what to do about it.
    public var message: String

    /// Creates an error with a code and a human message (which must not contain secrets).
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
