import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// The documented exit codes.
enum ExitStatus: Int32 {
    case ok = 0
    case failure = 1
    case usage = 2
    case notFound = 3
    case conflict = 4

    /// The exit code an error maps to.
    static func of(_ error: Error) -> ExitStatus {
        switch error {
        case let e as RunnerError:
            switch e.kind {
            case .failure: return .failure
            case .usage: return .usage
            case .notFound: return .notFound
            case .conflict: return .conflict
            }
        case is DiagnosticsError: return .usage
        case let e as StoreError:
            switch e.code {
            case .notFound: return .notFound
            case .alreadyDecided, .alreadyVoted, .invalidState: return .conflict
            case .invalidURL: return .usage
            default: return .failure
            }
        default: return .failure
        }
    }
}

/// Runs a command body; prints an error naming problem and fix and exits with its code.
func reporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let status = ExitStatus.of(error)
        let text: String
        switch error {
        case let e as RunnerError: text = e.message
        case let e as StoreError: text = e.message
        case let e as DiagnosticsError: text = e.description
        default: text = "\(error)"
        }
        Console.error(text)
        throw ExitCode(status.rawValue)
    }
}
