import Foundation

/// How the client waits between attempts after a 429, a 5xx or a connection failure.
///
/// The delay before retry `n` (0-based) is the provider's `Retry-After` (seconds or an HTTP date;
/// also `retry-after-ms`) when present, else `baseDelay * 2^n` with up to 50% random jitter;
/// both are capped at `maxDelay`. `sleep` and `now` are injectable so tests need not wait.
public struct RetryPolicy: Sendable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Whether to randomise the exponential delay (never applied to `Retry-After`).
    public var jitter: Bool
    /// Waits; the default is `Task.sleep`. Throws on cancellation.
    public var sleep: @Sendable (Duration) async throws -> Void
    /// The current time, for `Retry-After` given as an HTTP date.
    public var now: @Sendable () -> Date

    public init(maxRetries: Int = 3, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(60),
                jitter: Bool = true,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.sleep = sleep
        self.now = now
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    public func delay(attempt: Int, headers: [String: String]) -> Duration {
        if let explicit = Self.retryAfter(headers: headers, now: now()) {
            return min(explicit, maxDelay)
        }
        var d = baseDelay * Int(1 << min(attempt, 20))
        if jitter { d = d * Double.random(in: 0.5...1.0) }
        return min(d, maxDelay)
    }

    /// Reads `retry-after-ms`, then `retry-after` as seconds or as an HTTP date. Header names lower-case.
    public static func retryAfter(headers: [String: String], now: Date) -> Duration? {
        if let ms = headers["retry-after-ms"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), ms >= 0 {
            return .milliseconds(Int64(ms))
        }
        guard let value = headers["retry-after"]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0 {
            return .milliseconds(Int64(seconds * 1000))
        }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = format
            if let date = f.date(from: value) {
                let seconds = max(0, date.timeIntervalSince(now))
                return .milliseconds(Int64(seconds * 1000))
            }
        }
        return nil
    }
}
