import Foundation

/// Where and how ``SMTPTransport`` delivers.
///
/// - `smtps://host:465`: TLS from the first byte.
/// - `smtp://host:587`: STARTTLS is required (curl's `CURLUSESSL_ALL`, never the "try" mode);
///   a server that does not offer it gets nothing.
/// - `smtp://127.0.0.1:25` (or `::1`, `localhost`): a loopback relay such as a local Postfix
///   may be spoken to in plain text; ask for STARTTLS anyway with `tls: .startTLS`.
public struct SMTPConfiguration: Sendable, Hashable {
    /// How the connection is secured.
    public enum TLS: String, Sendable, Hashable, Codable {
        /// `smtps://` → implicit TLS; `smtp://` → STARTTLS required, except plain text to loopback.
        case automatic
        /// STARTTLS required, even to loopback.
        case startTLS
        /// No TLS: allowed only to a loopback host.
        case none
    }

    /// `smtp://host[:port]` or `smtps://host[:port]`.
    public var url: String
    public var tls: TLS
    /// The SMTP AUTH user, if the server wants one.
    public var username: String?
    /// The password (prefer ``passwordFile``; never logged or put in an error).
    public var password: String?
    /// A file holding the password (first line), read at each send, e.g. a systemd credential.
    public var passwordFile: String?
    /// A CA bundle to trust instead of the system's (tests, private CAs).
    public var caFile: String?
    /// Time allowed to connect (TCP + TLS handshake).
    public var connectTimeout: Duration
    /// Time allowed for the whole delivery.
    public var totalTimeout: Duration

    public init(url: String, tls: TLS = .automatic, username: String? = nil, password: String? = nil,
                passwordFile: String? = nil, caFile: String? = nil,
                connectTimeout: Duration = .seconds(10), totalTimeout: Duration = .seconds(60)) {
        self.url = url
        self.tls = tls
        self.username = username
        self.password = password
        self.passwordFile = passwordFile
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
    }

    /// What the URL and TLS mode come to: the curl URL and whether TLS is required.
    struct Resolved: Sendable {
        var url: String
        var requireTLS: Bool
        var host: String
    }

    /// Checks the URL and the TLS rules; a ``MailDeliveryError`` (permanent, `smtp_config` or
    /// `smtp_tls_required`) when they do not hold.
    func resolve() throws -> Resolved {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "smtp" || scheme == "smtps", let host = components.host, !host.isEmpty else {
            throw MailDeliveryError(code: "smtp_config", kind: .permanent,
                message: "SMTP URL \(SMTPConfiguration.redacted(url)) is not smtp://host[:port] or smtps://host[:port]; fix `smtp.url` in signoff.yaml")
        }
        if components.user != nil || components.password != nil {
            throw MailDeliveryError(code: "smtp_config", kind: .permanent,
                message: "SMTP URL \(SMTPConfiguration.redacted(url)) carries credentials; put the user in `smtp.username` and the password in `smtp.password_file`")
        }
        let loopback = SMTPConfiguration.isLoopback(host)
        switch (scheme, tls) {
        case ("smtps", .none):
            throw MailDeliveryError(code: "smtp_config", kind: .permanent,
                message: "smtps:// always uses TLS; remove `tls: none` or use smtp://")
        case ("smtps", _):
            return Resolved(url: url, requireTLS: true, host: host)
        case (_, .startTLS):
            return Resolved(url: url, requireTLS: true, host: host)
        case (_, .automatic):
            return Resolved(url: url, requireTLS: !loopback, host: host)
        case (_, .none):
            guard loopback else {
                throw MailDeliveryError(code: "smtp_tls_required", kind: .permanent,
                    message: "refusing to send mail in plain text to \(host): only a loopback relay (127.0.0.1, ::1, localhost) may be used without TLS; use smtp://\(host):587 with STARTTLS or smtps://\(host):465")
            }
            return Resolved(url: url, requireTLS: false, host: host)
        }
    }

    /// 127.0.0.0/8, ::1, localhost.
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let octets = h.split(separator: ".")
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The URL without any user-info part, for messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "(unparsable URL)" }
        c.user = nil
        c.password = nil
        return c.string ?? "(unparsable URL)"
    }

    /// The password from ``password`` or ``passwordFile`` (first line).
    func resolvedPassword() throws -> String? {
        if let password { return password }
        guard let passwordFile else { return nil }
        guard let data = FileManager.default.contents(atPath: passwordFile),
              let text = String(data: data, encoding: .utf8) else {
            throw MailDeliveryError(code: "smtp_config", kind: .permanent,
                message: "cannot read SMTP password file \(passwordFile); check the path and its permissions")
        }
        return text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first
            .map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) } ?? ""
    }
}
