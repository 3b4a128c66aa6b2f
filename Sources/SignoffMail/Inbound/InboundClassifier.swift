import Crypto
import Foundation

/// Decides what one incoming message or response file means, without doing any I/O itself:
/// bytes + configuration + a token lookup in, an `InboundResult` out.
///
/// Order: size → headers → dedupe → automatic/bounce (before any body is read) → token →
/// sender → strict authentication → thread → expiry and state → body → grammar.
public struct InboundClassifier: Sendable {
    public typealias TokenLookup = @Sendable (_ token: String) async throws -> InboundTokenInfo?
    public typealias SeenCheck = @Sendable (_ dedupeKey: String) async throws -> Bool

    public var config: InboundConfig {
        didSet { replyKey = Authenticity.ReplyKey(config.replyAddress) }
    }
    public var lookup: TokenLookup
    public var seen: SeenCheck
    /// The reply address's token key (kept with `config`), so a message does not re-derive it.
    private var replyKey: Authenticity.ReplyKey

    /// - Parameters:
    ///   - lookup: token (as read from the address) → what the store knows about it.
    ///   - seen: whether a message with this dedupe key was already recorded.
    public init(config: InboundConfig, lookup: @escaping TokenLookup, seen: @escaping SeenCheck = { _ in false }) {
        self.config = config; self.lookup = lookup; self.seen = seen
        self.replyKey = Authenticity.ReplyKey(config.replyAddress)
    }

    /// SHA-256 hex of a token, the form the store keeps.
    public static func tokenHash(_ token: String) -> String {
        var lowered = token.lowercased()
        return lowered.withUTF8 { TextFast.hex(contiguous: SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 { TextFast.hex(digest) }

    /// Classifies one raw message.
    public func classify(_ bytes: [UInt8], now: Date) async throws -> InboundResult {
        // The dedupe key is the Message-ID when there is one; the bytes' key (their SHA-256,
        // hashed only then: most replies have a Message-ID) is built only when it is needed
        // (every result leaves through `done`, and `seen` reads the key).
        var r = InboundResult(outcome: .unparseable, reason: "", dedupeKey: "")
        func bytesKey() -> String { "sha256:" + TextFast.hex(contiguous: SHA256.hash(data: bytes)) }
        func done(_ o: InboundResult.Outcome, _ reason: String) -> InboundResult {
            if r.dedupeKey.isEmpty { r.dedupeKey = bytesKey() }
            r.outcome = o; r.reason = reason; return r
        }

        if bytes.count > config.limits.maxRawBytes {
            return done(.tooLarge, "the message is \(bytes.count) bytes; the limit is \(config.limits.maxRawBytes)")
        }
        let message: MIMEMessage
        do { message = try MIMEMessage.parse(bytes, limits: config.limits) } catch {
            switch error {
            case .tooLarge(let m): return done(.tooLarge, m)
            case .unparseable(let m): return done(.unparseable, m)
            }
        }
        let h = message.headers
        if let mid = h.first("Message-ID").map(MessageID.normalize), !mid.isEmpty {
            r.messageID = mid
            r.dedupeKey = "mid:\(mid)"
        }
        r.subject = h.decoded("Subject")
        // From is parsed once for the sender, the automatic-mail check and the sender check.
        let fromValues = h.all("From")
        let firstFrom = EmailAddress.parseList(fromValues.first ?? "")
        r.sender = Authenticity.fromAddress(fromValues: fromValues, firstParsed: firstFrom)
        if r.dedupeKey.isEmpty { r.dedupeKey = bytesKey() }
        if try await seen(r.dedupeKey) { return done(.duplicate, "already imported (\(r.dedupeKey.hasPrefix("mid:") ? "same Message-ID" : "same bytes"))") }

        switch AutomaticMailDetector.classify(message, fromAddresses: firstFrom) {
        case .automatic(let why)?: return done(.automatic, "automatic mail: \(why)")
        case .bounce(let why, let original)?:
            r.bouncedMessageID = original
            return done(.bounce, original.map { "\(why); original Message-ID <\($0)>" } ?? "\(why); the original Message-ID is not included")
        case nil: break
        }

        guard let token = Authenticity.token(in: h, key: replyKey) else {
            return done(.unmatched, "no request token: the message is not addressed to \(config.replyAddress.localPart)+TOKEN@\(config.replyAddress.domain)")
        }
        r.tokenHash = Self.tokenHash(token)
        guard let info = try await lookup(token) else {
            return done(.unmatched, "the token in the address matches no request (token hash \(r.tokenHash!.prefix(12)))")
        }
        r.requestID = info.requestID
        r.runID = info.runID
        if let problem = Authenticity.senderProblem(fromValues: fromValues, firstParsed: firstFrom, reviewer: info.reviewer) {
            return done(.senderMismatch, problem)
        }
        if let authserv = config.strictAuthservID, let problem = Authenticity.strictProblem(h, authservID: authserv) {
            return done(.authFailed, problem)
        }
        if let problem = threadProblem(h, info: info) { return done(.unmatched, problem) }
        if let problem = stateProblem(info, now: now) { return done(problem.0, problem.1) }

        let text: String
        do { text = try message.textBody(limits: config.limits) ?? "" } catch {
            switch error {
            case .tooLarge(let m): return done(.tooLarge, m)
            case .unparseable(let m): return done(.unparseable, m)
            }
        }
        let visible = ReplyExtractor.visibleText(text)
        switch DecisionGrammar.parse(visible, expecting: info.expected, maxReason: config.limits.maxReasonCharacters) {
        case .decision(let d):
            r.decision = d
            return done(.applied, "\(d.kind) by \(info.reviewer.address)")
        case .ambiguous(let why): return done(.ambiguous, why)
        case .invalidValue(let why): return done(.invalidValue, why)
        case .tooLong(let why): return done(.tooLarge, why)
        }
    }

    /// Classifies one response file from the inbox folder (same token, expiry, single-use and
    /// quarantine rules; the responder must be the token's reviewer).
    public func classifyResponseFile(_ bytes: [UInt8], now: Date) async throws -> InboundResult {
        let sha = TextFast.hex(contiguous: SHA256.hash(data: bytes))
        var r = InboundResult(outcome: .unparseable, reason: "", dedupeKey: "sha256:\(sha)")
        func done(_ o: InboundResult.Outcome, _ reason: String) -> InboundResult { r.outcome = o; r.reason = reason; return r }
        let file: InboxResponseFile
        do { file = try InboxResponseFile.parse(bytes) } catch {
            return done(error.code == "too_large" ? .tooLarge : .unparseable, error.message)
        }
        r.sender = file.responder
        if try await seen(r.dedupeKey) { return done(.duplicate, "already imported (same bytes)") }
        let token = file.token.lowercased()
        r.tokenHash = Self.tokenHash(token)
        guard let info = try await lookup(token) else { return done(.unmatched, "the token matches no request") }
        r.requestID = info.requestID
        r.runID = info.runID
        guard info.requestID == file.request else {
            return done(.unmatched, "the token belongs to request \(info.requestID), not \(file.request)")
        }
        if IDNA.comparable(file.responder) != IDNA.comparable(info.reviewer) {
            return done(.senderMismatch, "the responder \(file.responder.address) is not the reviewer \(info.reviewer.address) the token was issued to")
        }
        if let problem = stateProblem(info, now: now) { return done(problem.0, problem.1) }
        let reason = file.reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let reason, reason.count > config.limits.maxReasonCharacters {
            return done(.tooLarge, "the reason is \(reason.count) characters (limit \(config.limits.maxReasonCharacters))")
        }
        let decision: Decision
        switch (file.decision, info.expected) {
        case ("approve", .approval):
            decision = .approve(comment: reason?.isEmpty == false ? reason : nil)
        case ("reject", .approval(let required)):
            if required && (reason ?? "").isEmpty { return done(.ambiguous, "a rejection needs a non-empty \"reason\"") }
            decision = .reject(reason: reason?.isEmpty == false ? reason : nil)
        case ("value", .value(let type)):
            switch Self.value(fromJSON: file.valueJSON ?? "", type) {
            case .decision(let d): decision = d
            case .invalidValue(let why), .ambiguous(let why), .tooLong(let why): return done(.invalidValue, why)
            }
        default:
            return done(.invalidValue, "decision \"\(file.decision)\" does not fit this request (\(Self.describe(info.expected)))")
        }
        r.decision = decision
        return done(.applied, "\(decision.kind) by \(info.reviewer.address) (response file)")
    }

    static func value(fromJSON raw: String, _ type: ExpectedResponse.ValueType) -> GrammarResult {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        if type == .number {
            guard let first = trimmed.first, first == "-" || first.isNumber else { return .invalidValue(reason: "\"value\" must be a JSON number") }
            return DecisionGrammar.validate(trimmed, .number)
        }
        guard let s = try? JSONDecoder().decode(String.self, from: Data(trimmed.utf8)) else {
            return .invalidValue(reason: "\"value\" must be a JSON string for this request")
        }
        return DecisionGrammar.validate(s, type)
    }

    static func describe(_ e: ExpectedResponse) -> String {
        switch e {
        case .approval: return "it expects approve or reject"
        case .value(let t): return "it expects a value (\(t))"
        }
    }

    /// Token and thread disagree when the reply's In-Reply-To/References name a mail from the
    /// same generator (same Message-ID domain) that was not sent with this token.
    func threadProblem(_ h: MIMEHeaders, info: InboundTokenInfo) -> String? {
        guard !info.issuedMessageIDs.isEmpty else { return nil }
        var found: [String] = []
        for f in h.fields where TextFast.asciiEqualsIgnoringCase(f.name, "In-Reply-To") { found += MessageID.all(f.value) }
        for f in h.fields where TextFast.asciiEqualsIgnoringCase(f.name, "References") { found += MessageID.all(f.value) }
        guard !found.isEmpty else { return nil }
        // The usual reply names one of our ids: for ASCII ids, lower-cased equality is equality
        // ignoring ASCII case, compared without building lower-cased copies and a set.
        if found.allSatisfy(TextFast.isASCII), info.issuedMessageIDs.allSatisfy(TextFast.isASCII),
           found.contains(where: { ref in info.issuedMessageIDs.contains { TextFast.asciiEqualsIgnoringCase(ref, $0) } }) {
            return nil
        }
        let refs = found.map { $0.lowercased() }
        let issued = Set(info.issuedMessageIDs.map { $0.lowercased() })
        if refs.contains(where: issued.contains) { return nil }
        let ourDomains = Set(issued.compactMap { $0.split(separator: "@").last.map(String.init) })
        if let foreign = refs.first(where: { ref in ref.split(separator: "@").last.map { ourDomains.contains(String($0)) } ?? false }) {
            return "the token and the thread disagree: the reply answers <\(foreign)>, which was not sent for request \(info.requestID)"
        }
        return nil
    }

    func stateProblem(_ info: InboundTokenInfo, now: Date) -> (InboundResult.Outcome, String)? {
        switch info.state {
        case .used: return (.alreadyDecided, "request \(info.requestID) was already decided with this token")
        case .decided: return (.alreadyDecided, "request \(info.requestID) is already decided")
        case .revoked: return (.expired, "this token for request \(info.requestID) was replaced (escalated or delegated)")
        case .open: break
        }
        if let exp = info.expiresAt, exp <= now {
            return (.expired, "the token for request \(info.requestID) expired at \(ISO8601DateFormatter().string(from: exp))")
        }
        return nil
    }
}
