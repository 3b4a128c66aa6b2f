import Foundation
import SignoffMail
import SignoffStore

/// One importer pass over the maildrop (`new/`) and the inbox (`new/*.json`).
///
/// Interim implementation owned by the runner so `signoff import` works end to end; the mail-in
/// module's importer (SignoffRunner/Import/) replaces `run` when it lands. It classifies with
/// `InboundClassifier`, records answers and the inbound log, then archives or quarantines.
public enum ImportPass {
    /// Imports what is waiting; returns counts by outcome.
    public static func run(_ environment: RunnerEnvironment) async throws -> [String: Int] {
        let store = environment.store
        guard let reply = EmailAddress.parseList(environment.config.mail.replyTo).first else {
            throw RunnerError.usage("mail.reply_to", "`mail.reply_to` is not an address; write e.g. approvals@example.org")
        }
        let classifier = InboundClassifier(
            config: InboundConfig(replyAddress: reply, strictAuthservID: environment.config.mail.authservID),
            lookup: { token in try await tokenInfo(store: store, token: token) },
            seen: { key in try await store.inboundSeen(dedupeKey: key) != nil })
        var counts: [String: Int] = [:]
        let fm = FileManager.default
        let config = environment.config
        for folder in [config.maildrop, config.inbox, config.archive, config.quarantine] {
            try? fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        // Maildir messages.
        let newDir = config.maildrop + "/new", curDir = config.maildrop + "/cur"
        try? fm.createDirectory(atPath: curDir, withIntermediateDirectories: true)
        for name in ((try? fm.contentsOfDirectory(atPath: newDir)) ?? []).sorted() where !name.hasPrefix(".") {
            let claimed = curDir + "/" + name + (name.contains(":2,") ? "" : ":2,")
            // Claim by rename; losing the race means another importer has it.
            guard rename(newDir + "/" + name, claimed) == 0 else { continue }
            guard let data = fm.contents(atPath: claimed) else { continue }
            let result = try await classifier.classify(Array(data), now: environment.now())
            let outcome = try await apply(result, path: claimed, environment: environment)
            counts[outcome, default: 0] += 1
            try file(claimed, name: name, outcome: result.outcome, reason: result.reason, config: config)
        }
        // Response files.
        let inboxNew = config.inbox + "/new"
        for name in ((try? fm.contentsOfDirectory(atPath: inboxNew)) ?? []).sorted() where name.hasSuffix(".json") {
            let path = inboxNew + "/" + name
            guard let data = fm.contents(atPath: path) else { continue }
            let result = try await classifier.classifyResponseFile(Array(data), now: environment.now())
            let outcome = try await apply(result, path: path, environment: environment)
            counts[outcome, default: 0] += 1
            try file(path, name: name, outcome: result.outcome, reason: result.reason, config: config)
        }
        return counts
    }

    static func tokenInfo(store: any RunStore, token: String) async throws -> InboundTokenInfo? {
        guard let record = try await store.tokenLookup(tokenHash: InboundClassifier.tokenHash(token)),
              let request = try await store.request(id: record.requestID) else { return nil }
        let expected = (try? HumanRequest.decode(request.requestData))?.expectedResponse ?? .approval(rejectReasonRequired: true)
        let state: InboundTokenInfo.State
        switch (record.state, request.status) {
        case (.used, _): state = .used
        case (.revoked, _): state = request.status == .pending ? .revoked : .decided
        case (_, .pending): state = .open
        default: state = .decided
        }
        return InboundTokenInfo(requestID: request.id, runID: request.runID, reviewer: EmailAddress(record.reviewer),
                                expiresAt: record.expiresAt, state: state, expected: expected,
                                issuedMessageIDs: record.messageID.map { [$0.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))] } ?? [])
    }

    /// Records the outcome (and the answer when it decides); returns the outcome's name.
    static func apply(_ result: InboundResult, path: String, environment: RunnerEnvironment) async throws -> String {
        let store = environment.store
        let now = environment.now()
        var inbound = InboundRecord(dedupeKey: result.dedupeKey, path: path, sender: result.sender?.address,
                                    outcome: SignoffStore.InboundOutcome(result.outcome.rawValue), reason: result.reason,
                                    requestID: result.requestID, receivedAt: now)
        if result.outcome == .applied, let decision = result.decision, let requestID = result.requestID,
           let request = try await store.request(id: requestID),
           let human = try? HumanRequest.decode(request.requestData) {
            let by = result.sender?.address
            let via = result.messageID ?? path
            guard let response = human.response(for: decision, by: by, via: via) else {
                inbound.outcome = .ambiguous
                inbound.reason = "delegation is not supported by this importer yet; reply APPROVE or REJECT: reason"
                try await store.recordInbound(inbound)
                return "ambiguous"
            }
            let verdict: Verdict
            var reason: String?
            switch decision {
            case .approve(let c): verdict = .approve; reason = c
            case .reject(let r): verdict = .reject; reason = r
            default: verdict = .value
            }
            do {
                let answer = try await store.answer(Answer(
                    requestID: requestID, reviewer: by ?? "unknown", verdict: verdict, response: response, reason: reason,
                    channel: path.hasSuffix(".json") ? .file : .mail, via: via, tokenHash: result.tokenHash, at: now,
                    inbound: inbound))
                return answer.decided ? "applied" : "voted"
            } catch let error as StoreError where error.code == .alreadyDecided || error.code == .alreadyVoted {
                inbound.outcome = .alreadyDecided
                inbound.reason = error.message
                try await store.recordInbound(inbound)
                return "already_decided"
            }
        }
        try await store.recordInbound(inbound)
        return result.outcome.rawValue
    }

    /// Moves a processed file to the archive, or to the quarantine with a reason file.
    static func file(_ path: String, name: String, outcome: InboundResult.Outcome, reason: String, config: SignoffConfig) throws {
        let target = (outcome.quarantines ? config.quarantine : config.archive) + "/" + name
        _ = rename(path, target)
        if outcome.quarantines {
            try? "\(outcome.rawValue): \(reason)\n".write(toFile: target + ".reason", atomically: true, encoding: .utf8)
        }
    }
}
