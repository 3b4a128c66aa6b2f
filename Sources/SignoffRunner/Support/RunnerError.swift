import Foundation

/// An error a user sees: a stable code, a message naming the problem and the fix, and a kind
/// that the CLI maps to its documented exit code.
///
/// Messages never contain secrets (passwords, tokens, API keys).
public struct RunnerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What class of failure this is; decides the CLI's exit code.
    public enum Kind: String, Sendable, Codable {
        /// Something failed (I/O, a step, the database): exit 1.
        case failure
        /// The command line or a file is wrong: exit 2.
        case usage
        /// A job, run, request or file does not exist: exit 3.
        case notFound
        /// The thing exists but is in the wrong state (e.g. rerun of a running run): exit 4.
        case conflict
    }

    /// A stable machine-readable code such as `job.not_found`.
    public var code: String
    /// What happened and what to do about it.
    public var message: String
    /// The class of failure.
    public var kind: Kind

    /// Creates an error; `message` must name the problem and the fix.
    public init(_ code: String, _ message: String, kind: Kind = .failure) {
        self.code = code
        self.message = message
        self.kind = kind
    }

    public var description: String { message }

    /// A usage error (exit 2).
    public static func usage(_ code: String, _ message: String) -> RunnerError {
        RunnerError(code, message, kind: .usage)
    }

    /// A not-found error (exit 3).
    public static func notFound(_ code: String, _ message: String) -> RunnerError {
        RunnerError(code, message, kind: .notFound)
    }

    /// A conflict error (exit 4).
    public static func conflict(_ code: String, _ message: String) -> RunnerError {
        RunnerError(code, message, kind: .conflict)
    }
}
