import Foundation

/// An error from the LLM client: what happened, and what to do about it.
///
/// `description` never contains an API key or token: provider messages are scrubbed of the
/// credential in use (and of anything that looks like an OpenAI key) before they are kept.
public struct LLMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; stable, for programs to switch on.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The configuration is incomplete or invalid (missing base URL, unreadable key file…).
        public static let configuration = Code(rawValue: "llm.configuration")
        /// 401: the provider did not accept the credential.
        public static let unauthorized = Code(rawValue: "llm.unauthorized")
        /// 403: the credential is valid but may not use this model or deployment.
        public static let forbidden = Code(rawValue: "llm.forbidden")
        /// 404: the model (or the Azure deployment) does not exist.
        public static let modelNotFound = Code(rawValue: "llm.model_not_found")
        /// The prompt and the requested completion do not fit the model's context window.
        public static let contextLengthExceeded = Code(rawValue: "llm.context_length_exceeded")
        /// 429 after every retry.
        public static let rateLimited = Code(rawValue: "llm.rate_limited")
        /// 5xx after every retry.
        public static let serverError = Code(rawValue: "llm.server_error")
        /// Another 4xx: the provider rejected the request.
        public static let badRequest = Code(rawValue: "llm.bad_request")
        /// Nothing listens at the base URL, or the host could not be resolved.
        public static let connectionFailed = Code(rawValue: "llm.connection_failed")
        /// The TCP/TLS connection was not established within `connect_timeout`.
        public static let connectTimeout = Code(rawValue: "llm.connect_timeout")
        /// The whole request took longer than `timeout`.
        public static let timeout = Code(rawValue: "llm.timeout")
        /// The response was not a chat completion the client understands.
        public static let invalidResponse = Code(rawValue: "llm.invalid_response")
        /// Any other transfer failure reported by libcurl.
        public static let transport = Code(rawValue: "llm.transport")
    }

    public var code: Code
    /// What happened.
    public var message: String
    /// What to do about it.
    public var fix: String
    /// The HTTP status, when the provider answered.
    public var status: Int?

    public init(code: Code, message: String, fix: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
        self.status = status
    }

    public var description: String {
        fix.isEmpty ? "\(code): \(message)" : "\(code): \(message); \(fix)"
    }

    /// Whether retrying the same request later may succeed (429, 5xx, connection and timeouts).
    public var isTransient: Bool {
        switch code {
        case .rateLimited, .serverError, .connectionFailed, .connectTimeout, .timeout: true
        default: false
        }
    }
}

/// Removes secrets from text a provider sent back (some echo part of the key in 401 messages).
enum SecretScrubber {
    static func scrub(_ text: String, secrets: [String]) -> String {
        var out = text
        for secret in secrets where secret.count >= 4 {
            out = out.replacingOccurrences(of: secret, with: "[redacted]")
        }
        // OpenAI-style keys, whole or partly masked ("sk-abc***xyz").
        if let regex = try? NSRegularExpression(pattern: #"sk-[A-Za-z0-9_\-\*]{3,}"#) {
            let range = NSRange(out.startIndex..., in: out)
            out = regex.stringByReplacingMatches(in: out, range: range, withTemplate: "[redacted]")
        }
        return out
    }
}
