import Foundation
import Logging
import SignoffMail
import SignoffStore

/// Delivers due outbox mail through a ``MailTransport``: one pass per call (`signoff run`,
/// `signoff send` and the worker tick call it).
///
/// - A row is taken from `store.dueMail` (which holds it for a few minutes so other senders
///   skip it), sent as its stored raw bytes, then marked sent. A row recorded as sent is never
///   due again, so it is never re-sent.
/// - A crash between the server's `250` and `markSent` leaves the row pending; it becomes due
///   again when the hold runs out and goes out once more with the same bytes, hence the same
///   Message-ID: at most one duplicate, which mail clients and the importer recognise.
/// - A transient failure (4xx, connection trouble) is recorded with its error and retried after
///   an exponential backoff with jitter (``MailRetryPolicy``); after `maxAttempts` it becomes
///   permanent.
/// - A permanent failure (5xx) marks the row failed with the server's text and queues the
///   failure notice to the run's owner (never for a failure notice itself).
/// - A due reminder that is no longer needed (see ``reminderWithdrawal(_:now:)``) is not sent: its
///   row becomes `withdrawn` with the reason, which is neither a delivery nor a failure.
public struct OutboxSender: Sendable {
    /// How the sender behaves.
    public struct Configuration: Sendable {
        /// Envelope sender for rows that do not name one.
        public var defaultSender: EmailAddress
        /// Backoff between attempts and the attempt limit.
        public var retry: MailRetryPolicy
        /// Rows taken per `dueMail` call.
        public var batchSize: Int
        /// Composes failure notices; `nil` sends none.
        public var noticeComposer: MailComposer?
        /// Who gets the failure notice when the run's `requestedBy` is not a mail address.
        public var fallbackOwner: EmailAddress?

        public init(defaultSender: EmailAddress, retry: MailRetryPolicy = .default, batchSize: Int = 100,
                    noticeComposer: MailComposer? = nil, fallbackOwner: EmailAddress? = nil) {
            self.defaultSender = defaultSender
            self.retry = retry
            self.batchSize = batchSize
            self.noticeComposer = noticeComposer
            self.fallbackOwner = fallbackOwner
        }
    }

    /// What one pass did.
    public struct PassReport: Sendable, Hashable {
        /// Delivered and marked sent.
        public var sent = 0
        /// Failed transiently; will be retried.
        public var deferred = 0
        /// Failed permanently.
        public var failed = 0
        /// Failure notices queued for owners.
        public var noticesQueued = 0
        /// Scheduled reminders not sent because they were no longer needed (recorded with status
        /// `withdrawn` and the reason in `last_error`; not counted in `failed`).
        public var withdrawn = 0
        public init() {}
    }

    public let store: any RunStore
    public let transport: any MailTransport
    public let configuration: Configuration
    private let logger: Logger
    private let random: @Sendable () -> Double

    /// - Parameter random: the jitter source, a value in 0..<1 (inject a fixed one in tests).
    public init(store: any RunStore, transport: any MailTransport, configuration: Configuration,
                logger: Logger = Logger(label: "signoff.outbox"),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.store = store
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
        self.random = random
    }

    /// Sends every mail due at `now` (in batches until none is left) and records each outcome.
    /// Store errors end the pass and are thrown; delivery errors are recorded on their rows.
    @discardableResult
    public func sendDue(now: Date) async throws -> PassReport {
        var report = PassReport()
        var seen = Set<Int64>()
        while true {
            let batch = try await store.dueMail(now: now, limit: configuration.batchSize)
                .filter { !seen.contains($0.id) }
            if batch.isEmpty { break }
            // Reminders missed while nothing ran are due together: only the latest per reviewer goes out.
            var latestReminder: [String: Int64] = [:]
            for mail in batch where mail.kind == .reminder {
                latestReminder[Self.reminderKey(mail)] = max(latestReminder[Self.reminderKey(mail)] ?? mail.id, mail.id)
            }
            for mail in batch {
                seen.insert(mail.id)
                if mail.kind == .reminder {
                    let reason = latestReminder[Self.reminderKey(mail)] != mail.id
                        ? "superseded by a later reminder due at the same time"
                        : try await reminderWithdrawal(mail, now: now)
                    if let reason {
                        if try await store.markWithdrawn(id: mail.id, reason: reason, now: now) {
                            report.withdrawn += 1
                            logger.info("reminder withdrawn", metadata: ["mail.message_id": "\(mail.messageID)", "reason": "\(reason)"])
                        }
                        continue
                    }
                }
                try await deliver(mail, now: now, report: &report)
            }
            if batch.count < configuration.batchSize { break }
        }
        return report
    }

    private func deliver(_ mail: OutboxMail, now: Date, report: inout PassReport) async throws {
        var log = logger
        log[metadataKey: "mail.message_id"] = "\(mail.messageID)"
        log[metadataKey: "mail.kind"] = "\(mail.kind.rawValue)"
        if let runID = mail.runID { log[metadataKey: "run.id"] = "\(runID)" }
        let sender = mail.sender.map { EmailAddress($0) } ?? configuration.defaultSender
        do {
            let result = try await transport.send(raw: [UInt8](mail.raw), from: sender, to: [EmailAddress(mail.recipient)])
            try await store.markSent(id: mail.id, at: now)
            report.sent += 1
            log.info("mail sent", metadata: ["mail.location": "\(result.location)",
                                             "mail.response_code": "\(result.responseCode.map(String.init) ?? "-")"])
        } catch let error as MailDeliveryError {
            let attempt = mail.attempts + 1
            if error.isTransient && configuration.retry.shouldRetry(afterAttempt: attempt) {
                let delay = configuration.retry.delay(afterAttempt: attempt, random: random())
                let next = now.addingTimeInterval(Self.seconds(delay))
                try await store.markAttemptFailed(id: mail.id, error: error.message, permanent: false, nextAttempt: next, now: now)
                report.deferred += 1
                log.info("mail deferred", metadata: ["mail.attempt": "\(attempt)", "mail.error": "\(error.message)",
                                                     "mail.next_attempt": "\(next)"])
            } else {
                // Queue the notice before marking the row failed: a crash in between repeats
                // the notice rather than losing it.
                if mail.kind != .failure, try await queueFailureNotice(for: mail, error: error, now: now, logger: log) {
                    report.noticesQueued += 1
                }
                let text = error.isTransient ? "gave up after \(attempt) attempts: \(error.message)" : error.message
                try await store.markAttemptFailed(id: mail.id, error: text, permanent: true, nextAttempt: nil, now: now)
                report.failed += 1
                log.warning("mail failed permanently", metadata: ["mail.attempt": "\(attempt)", "mail.error": "\(text)"])
            }
        }
    }

    static func reminderKey(_ mail: OutboxMail) -> String { (mail.requestID ?? "") + "\n" + mail.recipient.lowercased() }

    /// Why a scheduled reminder must not go out now, or nil to send it: the request is no longer
    /// pending or past its deadline, or the token the reminder carries is used (the reviewer
    /// answered) or revoked (decided, escalated, delegated, cancelled).
    func reminderWithdrawal(_ mail: OutboxMail, now: Date) async throws -> String? {
        guard let requestID = mail.requestID, let request = try await store.request(id: requestID) else {
            return "its request no longer exists"
        }
        guard request.status == .pending else { return "the request is \(request.status.rawValue)" }
        if let due = request.dueAt, due <= now { return "the request's deadline has passed" }
        guard let token = Self.replyToken(in: mail.raw) else { return nil }
        guard let record = try await store.tokenLookup(tokenHash: ReplyToken.sha256Hex(of: token)) else {
            return "its reply token is unknown"
        }
        switch record.state {
        case .active: return nil
        case .used: return "\(record.reviewer) has answered"
        case .revoked: return "the reply token was revoked (the request was handed on)"
        }
    }

    /// The token in the `Reply-To` sub-address (`local+TOKEN@domain`) of a stored mail, if any.
    static func replyToken(in raw: Data) -> String? {
        let head = raw.prefix(16_384)
        // "\r\n" is one Character in Swift: split lines on LF after normalising.
        let text = String(decoding: head, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { break }
            guard line.lowercased().hasPrefix("reply-to:") else { continue }
            let value = line.dropFirst("reply-to:".count)
            guard let at = value.firstIndex(of: "@"), let plus = value[..<at].lastIndex(of: "+") else { return nil }
            let token = value[value.index(after: plus)..<at]
            return token.isEmpty ? nil : String(token)
        }
        return nil
    }

    /// Composes and queues the failure notice to the run's owner; false when there is nobody to tell.
    private func queueFailureNotice(for mail: OutboxMail, error: MailDeliveryError, now: Date, logger: Logger) async throws -> Bool {
        guard let composer = configuration.noticeComposer else { return false }
        let run = try await mail.runID.asyncFlatMap { try await store.run(id: $0) }
        let request = try await mail.requestID.asyncFlatMap { try await store.request(id: $0) }
        let owner = run?.requestedBy.map { EmailAddress($0) }.flatMap { $0.isValid ? $0 : nil } ?? configuration.fallbackOwner
        guard let owner else {
            logger.warning("no owner address to tell about the failed mail; set a fallback owner in signoff.yaml")
            return false
        }
        let context = MailTemplateContext(
            job: .init(name: run?.job ?? "signoff"),
            run: .init(id: run?.id ?? mail.runID ?? "-", attempt: run?.attempt ?? 1, owner: owner.address),
            stepID: request?.stepID ?? request?.executorID ?? "-",
            request: .init(id: request?.id ?? mail.requestID ?? "-",
                           title: request.map(Self.title(of:)) ?? "mail \(mail.messageID)"),
            reviewer: owner,
            failure: .init(recipient: mail.recipient, kind: mail.kind.rawValue, error: error.serverText ?? error.message))
        let notice: MailMessage
        do {
            notice = try composer.compose(.failure, context: context, to: owner, date: now)
        } catch {
            logger.error("cannot compose the failure notice: \(error)")
            return false
        }
        try await store.enqueueMail([NewMail(messageID: notice.messageID, kind: .failure, recipient: owner.address,
                                             raw: Data(notice.rfc5322()), requestID: mail.requestID, runID: mail.runID)],
                                    now: now)
        return true
    }

    /// A one-line title for a request: its data's `title`, `subject` or `prompt`, else its id.
    static func title(of request: RequestRecord) -> String {
        if let object = try? JSONSerialization.jsonObject(with: request.requestData) as? [String: Any] {
            for key in ["title", "subject", "prompt", "question", "message"] {
                if let text = object[key] as? String, !text.isEmpty {
                    let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? text
                    return String(line.prefix(120))
                }
            }
        }
        return "request \(request.id)"
    }

    static func seconds(_ d: Duration) -> TimeInterval {
        let c = d.components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }
}

extension Optional {
    fileprivate func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
