import Foundation
import SignoffEngine
import SignoffLLM
import SignoffTestSupport

extension FakeLLMServer {
    /// One request as the server recorded it.
    struct Recorded: Decodable {
        var index: Int
        var method: String
        var path: String
        var headers: [String: String]
        var body: JSONValue?

        /// Header lookup ignoring case (http.server keeps the client's spelling).
        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    /// Every request received so far, in order.
    func requests() throws -> [Recorded] {
        try recordedLines().map { try JSONDecoder().decode(Recorded.self, from: $0) }
    }
}

/// Records the delays the client asked to sleep, without sleeping.
final class RecordingSleeper: @unchecked Sendable /* `delays` guarded by `lock` */ {
    private let lock = NSLock()
    private var _delays: [Duration] = []

    var delays: [Duration] {
        lock.withLock { _delays }
    }

    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] d in
            lock.withLock { _delays.append(d) }
        }
    }
}
