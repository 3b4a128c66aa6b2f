import Foundation
import Logging

/// The run store over SQLite or PostgreSQL (one SQL implementation, two dialects).
final class SQLRunStore: Sendable {
    static func open(target: DatabaseTarget, logger: Logger, connections: Int) async throws -> any RunStore {
        throw StoreError(.invalidState, "not implemented yet")
    }
}
