import Foundation

/// Something that delivers an RFC 5322 message: SMTP (``SMTPTransport``) or an outbox folder
/// of `.eml` files (``OutboxFolderTransport``).
///
/// Errors are ``MailDeliveryError``s classified ``MailDeliveryError/Kind/transient`` (4xx,
/// connection trouble: retry later) or ``MailDeliveryError/Kind/permanent`` (5xx, bad
/// configuration: do not retry; tell the run's owner).
public protocol MailTransport: Sendable {
    /// Delivers `raw` (CRLF line ends) from the envelope sender `from` to `to`.
    func send(raw: [UInt8], from: EmailAddress, to: [EmailAddress]) async throws -> DeliveryResult
}

extension MailTransport {
    /// Delivers a composed message to its `To` recipients, with `From` as envelope sender.
    public func send(_ message: MailMessage) async throws -> DeliveryResult {
        try await send(raw: message.rfc5322(), from: message.from, to: message.to)
    }
}

/// What a transport reports after a successful delivery.
public struct DeliveryResult: Sendable, Hashable {
    /// The SMTP reply code of the final reply (250), `nil` for the outbox folder.
    public var responseCode: Int?
    /// The server's last reply text, when known.
    public var serverText: String?
    /// Where the message went: the file path for the outbox folder, the server URL for SMTP.
    public var location: String

    public init(responseCode: Int? = nil, serverText: String? = nil, location: String) {
        self.responseCode = responseCode
        self.serverText = serverText
        self.location = location
    }
}

/// A delivery that did not happen, classified for the retry policy. Never contains a password.
public struct MailDeliveryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Whether trying again later can help.
    public enum Kind: String, Sendable, Hashable {
        /// 4xx reply, connection refused, timeout, TLS hiccup: retry with backoff.
        case transient
        /// 5xx reply, refused configuration (plaintext to a remote host), unwritable folder: do not retry.
        case permanent
    }

    /// A stable code: `smtp_transient`, `smtp_rejected`, `smtp_connect`, `smtp_tls_required`,
    /// `smtp_config`, `outbox_write`, …
    public var code: String
    public var kind: Kind
    /// What happened and what to do.
    public var message: String
    /// The SMTP reply code, when the server answered.
    public var responseCode: Int?
    /// The server's reply text, when the server answered.
    public var serverText: String?

    public init(code: String, kind: Kind, message: String, responseCode: Int? = nil, serverText: String? = nil) {
        self.code = code
        self.kind = kind
        self.message = message
        self.responseCode = responseCode
        self.serverText = serverText
    }

    /// Whether the sender should try again later.
    public var isTransient: Bool { kind == .transient }

    public var description: String { "\(code) (\(kind.rawValue)): \(message)" }
}
