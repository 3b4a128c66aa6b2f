import Foundation

/// Exponential backoff with jitter for mail delivery: attempt n (1-based) waits
/// `min(maxDelay, baseDelay · multiplier^(n-1))`, then a random fraction of `jitter` of that is
/// taken off ("equal jitter"-style), so many failed mails do not retry in lock step.
/// A pure function of its inputs; the random source is injected.
public struct MailRetryPolicy: Sendable, Hashable {
    /// Delay after the first failure.
    public var baseDelay: Duration
    /// Growth per attempt.
    public var multiplier: Double
    /// The longest wait.
    public var maxDelay: Duration
    /// The fraction of the delay that is randomised, 0…1 (0.5: between 50% and 100% of it).
    public var jitter: Double
    /// After this many failed attempts a transient failure becomes permanent.
    public var maxAttempts: Int

    /// The default: 1 min, ×2 per attempt, at most 1 h, 50% jitter, 12 attempts (about 8 hours).
    public static let `default` = MailRetryPolicy(baseDelay: .seconds(60), multiplier: 2,
                                                  maxDelay: .seconds(3600), jitter: 0.5, maxAttempts: 12)

    public init(baseDelay: Duration, multiplier: Double, maxDelay: Duration, jitter: Double, maxAttempts: Int) {
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.jitter = min(1, max(0, jitter))
        self.maxAttempts = maxAttempts
    }

    /// The wait before the next try after `attempt` failures (`attempt` ≥ 1), with `random` in
    /// 0..<1 choosing the jitter.
    public func delay(afterAttempt attempt: Int, random: Double) -> Duration {
        let base = Self.seconds(baseDelay)
        let cap = Self.seconds(maxDelay)
        let exponent = Double(max(0, attempt - 1))
        let full = min(cap, base * pow(multiplier, exponent))
        let r = min(max(random, 0), 1)
        let seconds = full * (1 - jitter * r)
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// ``delay(afterAttempt:random:)`` with a value drawn from `generator`.
    public func delay<G: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout G) -> Duration {
        delay(afterAttempt: attempt, random: Double.random(in: 0..<1, using: &generator))
    }

    /// Whether another try is allowed after `attempt` failures.
    public func shouldRetry(afterAttempt attempt: Int) -> Bool { attempt < maxAttempts }

    private static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
