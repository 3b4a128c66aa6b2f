import CCurl
import Foundation

/// Delivers mail over SMTP with libcurl (see ``SMTPConfiguration`` for the TLS rules).
///
/// Each send runs curl's blocking transfer on a thread of its own, never on Swift's cooperative
/// pool. The result carries the server's final reply code; failures are ``MailDeliveryError``s:
/// a 4xx reply or a connection/TLS problem is transient, a 5xx reply is permanent and carries
/// the server's text. The password never appears in an error.
public struct SMTPTransport: MailTransport {
    public let configuration: SMTPConfiguration

    /// A transport for `configuration`; throws (permanent, `smtp_config`/`smtp_tls_required`)
    /// when the URL or TLS mode is not acceptable, before any connection is made.
    public init(configuration: SMTPConfiguration) throws {
        _ = try configuration.resolve()
        _ = SMTPTransport.globalInit
        self.configuration = configuration
    }

    public func send(raw: [UInt8], from: EmailAddress, to: [EmailAddress]) async throws -> DeliveryResult {
        for address in [from] + to where !address.isValid {
            throw MailDeliveryError(code: "smtp_address", kind: .permanent,
                message: "'\(address.address)' is not a valid email address; fix the reviewer or sender address")
        }
        guard !to.isEmpty else {
            throw MailDeliveryError(code: "smtp_address", kind: .permanent, message: "a mail has no recipient")
        }
        let configuration = self.configuration
        let result: Result<DeliveryResult, MailDeliveryError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: SMTPTransport.perform(raw: raw, from: from, to: to, configuration: configuration))
            }
            thread.name = "signoff-smtp"
            thread.start()
        }
        return try result.get()
    }

    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    /// One blocking SMTP transaction; runs on a dedicated thread.
    private static func perform(raw: [UInt8], from: EmailAddress, to: [EmailAddress],
                                configuration: SMTPConfiguration) -> Result<DeliveryResult, MailDeliveryError> {
        let resolved: SMTPConfiguration.Resolved
        let password: String?
        do {
            resolved = try configuration.resolve()
            password = try configuration.resolvedPassword()
        } catch let error as MailDeliveryError {
            return .failure(error)
        } catch {
            return .failure(MailDeliveryError(code: "smtp_config", kind: .permanent, message: "\(error)"))
        }
        guard let handle = curl_easy_init() else {
            return .failure(MailDeliveryError(code: "smtp_internal", kind: .transient, message: "libcurl could not create a handle (out of memory?)"))
        }
        defer { curl_easy_cleanup(handle) }

        let transfer = SMTPTransfer(payload: raw)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        for address in to { recipients = curl_slist_append(recipients, "<\(address.address)>") }
        defer { curl_slist_free_all(recipients) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            signoff_curl_setopt_string(handle, CURLOPT_URL, resolved.url)
            signoff_curl_setopt_long(handle, CURLOPT_USE_SSL, resolved.requireTLS ? Int(CURLUSESSL_ALL.rawValue) : Int(CURLUSESSL_NONE.rawValue))
            signoff_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(from.address)>")
            signoff_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipients)
            signoff_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
            signoff_curl_setopt_read_function(handle, smtpReadCallback)
            signoff_curl_setopt_pointer(handle, CURLOPT_READDATA, context)
            signoff_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(raw.count))
            signoff_curl_setopt_long(handle, CURLOPT_VERBOSE, 1)
            signoff_curl_setopt_debug_function(handle, smtpDebugCallback)
            signoff_curl_setopt_pointer(handle, CURLOPT_DEBUGDATA, context)
            signoff_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            signoff_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            signoff_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(configuration.connectTimeout))
            signoff_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(configuration.totalTimeout))
            if let caFile = configuration.caFile { signoff_curl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
            if let user = configuration.username { signoff_curl_setopt_string(handle, CURLOPT_USERNAME, user) }
            if let password { signoff_curl_setopt_string(handle, CURLOPT_PASSWORD, password) }
            return curl_easy_perform(handle)
        }
        // Read curl's texts at once: the next call on the handle may overwrite them.
        let curlText = String(decoding: errorBuffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var responseCode = 0
        signoff_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &responseCode)
        let reply = transfer.lastReply()

        if code == CURLE_OK {
            return .success(DeliveryResult(responseCode: responseCode == 0 ? nil : responseCode,
                                           serverText: reply, location: SMTPConfiguration.redacted(resolved.url)))
        }
        return .failure(classify(code: code, curlText: curlText, responseCode: responseCode,
                                 reply: transfer.lastErrorReply() ?? reply, host: resolved.host))
    }

    /// 5xx → permanent with the server's text; 4xx and connection trouble → transient.
    static func classify(code: CURLcode, curlText: String, responseCode: Int, reply: String?, host: String) -> MailDeliveryError {
        let curlMessage = curlText.isEmpty ? String(cString: curl_easy_strerror(code)) : curlText
        // The last reply line that carried an error code is the server's verdict.
        let replyCode = reply.flatMap { Int($0.prefix(3)) } ?? responseCode
        if replyCode >= 500 && replyCode < 600 {
            return MailDeliveryError(code: "smtp_rejected", kind: .permanent,
                message: "the SMTP server \(host) refused the mail: \(reply ?? "\(replyCode)"); check the recipient address and the sender's permissions",
                responseCode: replyCode, serverText: reply)
        }
        if replyCode >= 400 && replyCode < 500 {
            return MailDeliveryError(code: "smtp_transient", kind: .transient,
                message: "the SMTP server \(host) deferred the mail: \(reply ?? "\(replyCode)"); it will be retried",
                responseCode: replyCode, serverText: reply)
        }
        switch code {
        case CURLE_USE_SSL_FAILED:
            return MailDeliveryError(code: "smtp_tls_required", kind: .transient,
                message: "the SMTP server \(host) did not offer STARTTLS, which is required for a non-loopback relay (\(curlMessage)); enable TLS on the server or use smtps://; it will be retried",
                responseCode: responseCode == 0 ? nil : responseCode, serverText: reply)
        case CURLE_LOGIN_DENIED:
            return MailDeliveryError(code: "smtp_auth", kind: .permanent,
                message: "the SMTP server \(host) refused the login (\(curlMessage)); check `smtp.username` and the password file",
                responseCode: responseCode == 0 ? nil : responseCode, serverText: reply)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return MailDeliveryError(code: "smtp_config", kind: .permanent,
                message: "libcurl cannot use this SMTP URL (\(curlMessage)); fix `smtp.url`")
        default:
            return MailDeliveryError(code: "smtp_connect", kind: .transient,
                message: "could not deliver to the SMTP server \(host): \(curlMessage); it will be retried",
                responseCode: responseCode == 0 ? nil : responseCode, serverText: reply)
        }
    }

    private static func milliseconds(_ d: Duration) -> Int {
        let c = d.components
        return max(1, Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000))
    }
}

/// The state of one transfer, touched only by the thread running it and curl's callbacks on
/// that same thread.
private final class SMTPTransfer {
    let payload: [UInt8]
    var offset = 0
    /// Reply lines from the server, most recent last (bounded).
    var replies: [String] = []

    init(payload: [UInt8]) { self.payload = payload }

    func record(_ text: String) {
        for line in text.split(whereSeparator: { $0 == "\r" || $0 == "\n" }) where !line.isEmpty {
            replies.append(String(line))
            if replies.count > 32 { replies.removeFirst(replies.count - 32) }
        }
    }

    /// The last reply line.
    func lastReply() -> String? { replies.last }

    /// The last reply line with a 4xx/5xx code, the server's complaint.
    func lastErrorReply() -> String? {
        replies.last { line in
            guard let first = line.first else { return false }
            return (first == "4" || first == "5") && Int(line.prefix(3)) != nil
        }
    }
}

private func smtpReadCallback(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ nitems: Int,
                              _ userdata: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<SMTPTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let room = size * nitems
    let n = min(room, transfer.payload.count - transfer.offset)
    guard n > 0 else { return 0 }
    transfer.payload.withUnsafeBytes { bytes in
        UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + transfer.offset, byteCount: n)
    }
    transfer.offset += n
    return n
}

private func smtpDebugCallback(_ handle: UnsafeMutableRawPointer?, _ type: curl_infotype,
                               _ data: UnsafeMutablePointer<CChar>?, _ size: Int,
                               _ userdata: UnsafeMutableRawPointer?) -> Int32 {
    // Only the server's replies: never CURLINFO_HEADER_OUT, which would carry AUTH secrets.
    guard type == CURLINFO_HEADER_IN, let data, let userdata, size > 0 else { return 0 }
    let transfer = Unmanaged<SMTPTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    transfer.record(text)
    return 0
}
