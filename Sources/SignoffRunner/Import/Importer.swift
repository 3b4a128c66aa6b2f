import Foundation
import SignoffMail
import SignoffStore
import Synchronization

/// Wires the mail-in importer (`ImportPass`) to the runner: the request payloads it must read
/// (`HumanRequest`), the response bytes it must write (`HumanResponse`), and notice mail rendered
/// from the templates.
public enum Importer {
    /// One pass over the maildrop and the inbox; returns counts by outcome.
    public static func run(_ environment: RunnerEnvironment) async throws -> ImportPass.Summary {
        let config = environment.config
        guard let reply = EmailAddress.parseList(config.mail.replyTo).first else {
            throw RunnerError.usage("mail.reply_to", "`mail.reply_to` (\(config.mail.replyTo)) is not an address; write e.g. approvals@example.org")
        }
        let maildir = Maildir(root: URL(fileURLWithPath: config.maildrop))
        let inbox = Maildir(root: URL(fileURLWithPath: config.inbox))
        for folder in [maildir, inbox] {
            // The importer files messages under its folder's archive/ and quarantine/; point those at
            // the folders signoff.yaml names (`archive:`, `quarantine:`) unless they already exist.
            for (sub, target) in [("archive", config.archive), ("quarantine", config.quarantine)] {
                let link = folder.root.appendingPathComponent(sub).path
                var isDir: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: link, isDirectory: &isDir)
                let isLink = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != nil
                if !exists, !isLink, target != link {
                    try? FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                    try? FileManager.default.createDirectory(at: folder.root, withIntermediateDirectories: true)
                    try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
                }
            }
            do {
                try folder.create()
            } catch {
                throw RunnerError("import.folder", "cannot prepare \(folder.root.path): \(error); check that the folder exists and is writable")
            }
        }
        return try await pass(environment, maildir: maildir, inbox: inbox, reply: reply).run()
    }

    /// The pass `run` makes (the benchmark times it): the runner's interpreter, notices rendered
    /// with the templates, and the request policies. The folders are used as they are.
    public static func pass(_ environment: RunnerEnvironment, maildir: Maildir?, inbox: Maildir?, reply: EmailAddress) -> ImportPass {
        var pass = ImportPass(store: environment.store, maildir: maildir, inbox: inbox,
                              config: InboundConfig(replyAddress: reply, strictAuthservID: environment.config.mail.authservID),
                              interpreter: HumanRequestInterpreter(),
                              notices: TemplateNoticeComposer(environment: environment),
                              logger: environment.logger, now: environment.now)
        pass.policy = RunnerImportPolicy(environment: environment)
        return pass
    }
}

/// The request payloads and policies an import decodes: each message's request is read several
/// times (its grammar, its response bytes, its policies, its notice), so the last few thousand are
/// kept decoded.
enum ImportedRequests {
    private static let payloads = DecodedByRequest<ImportedRequest>()
    private static let policies = DecodedByRequest<RequestMail.Policy>()

    /// What the import reads of `request`'s payload, or nil when it is not a `HumanRequest`.
    static func human(_ request: RequestRecord) -> ImportedRequest? {
        payloads.value(request.id, request.requestData) { ImportedRequest.decode($0) }
    }

    /// `request`'s policy (reminders, forbid, delegates …), or nil when it has none.
    static func policy(_ request: RequestRecord) -> RequestMail.Policy? {
        guard let data = request.policy else { return nil }
        return policies.value(request.id, data) { _ in RequestMail.Policy.of(request) }
    }
}

/// Values decoded from a request's stored bytes, by request id, with the bytes they were decoded
/// from (a request's payload and policy never change, but another store may reuse an id: the
/// bytes are compared). Keyed by id because hashing `Data` reads only its first 80 bytes, which
/// every payload of a job shares: keyed by the bytes, lookups degraded to comparing long chains.
final class DecodedByRequest<Value: Sendable>: Sendable {
    /// One decoded value (a box: a lookup copies one reference, not every field of the value).
    private final class Entry: Sendable {
        let data: Data
        let value: Value?
        init(_ data: Data, _ value: Value?) { self.data = data; self.value = value }
    }
    private let table = Mutex<[String: Entry]>([:])
    private let limit = 4096

    func value(_ id: String, _ data: Data, decode: (Data) -> Value?) -> Value? {
        if let known = table.withLock({ $0[id] }), known.data == data { return known.value }
        let entry = Entry(data, decode(data))
        table.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[id] = entry
        }
        return entry.value
    }
}

/// Reads the runner's request payloads for the importer.
public struct HumanRequestInterpreter: ImportRequestInterpreter {
    public init() {}

    public func expectedResponse(for request: RequestRecord) -> ExpectedResponse? {
        ImportedRequests.human(request)?.expectedResponse
    }

    public func response(for decision: Decision, request: RequestRecord, by reviewer: String, via: String?) -> Data? {
        guard let human = ImportedRequests.human(request) else { return nil }
        if case .delegate = decision { return nil }  // a delegation is not a vote: `RunnerImportPolicy` acts on it
        if Self.isForbidden(reviewer, request: request, requestedBy: human.requestedBy) { return nil }
        return human.response(for: decision, by: reviewer, via: via)
    }

    /// Separation of duties: `forbid: [requester]` refuses the address that enqueued the run, and
    /// listed addresses are refused outright. (A safety net: with `RunnerImportPolicy` set, such an
    /// answer is refused earlier, with the reason told to the reviewer.)
    public static func isForbidden(_ reviewer: String, request: RequestRecord, human: HumanRequest?) -> Bool {
        isForbidden(reviewer, request: request, requestedBy: human?.state?.run.requestedBy)
    }

    /// `isForbidden` for the requester read from the payload's `state.run.requestedBy`.
    static func isForbidden(_ reviewer: String, request: RequestRecord, requestedBy: String?) -> Bool {
        guard let policy = ImportedRequests.policy(request) else { return false }
        let who = reviewer.lowercased()
        if policy.forbid.contains(where: { $0.lowercased() == who }) { return true }
        if policy.forbid.contains("requester"), let requester = requestedBy?.lowercased() {
            let bare = EmailAddress.parseList(requester).first?.address.lowercased() ?? requester
            return bare == who
        }
        return false
    }
}

/// Renders the importer's notices (confirmation, clarification, already decided, decided, bounce)
/// with the mail templates.
struct TemplateNoticeComposer: ImportNoticeComposer {
    let environment: RunnerEnvironment

    func mail(for notice: ImportNotice, now: Date) async throws -> [NewMail] {
        try await mail(for: [notice], now: now).first ?? []
    }

    func mail(for notices: [ImportNotice], now: Date) async throws -> [[NewMail]] {
        try await mail(for: notices, runs: [:], now: now)
    }

    /// A batch's notices: the runs not in `known` read in one go, then composed in parallel chunks.
    func mail(for notices: [ImportNotice], runs known: [String: RunRecord], now: Date) async throws -> [[NewMail]] {
        guard !notices.isEmpty, let composer = try? environment.composer() else { return notices.map { _ in [] } }
        var runIDs: [String] = []
        for notice in notices {
            switch notice {
            case .confirmation(let request, _, _, _, _, _), .clarification(let request, _, _, _, _, _), .alreadyDecided(let request, _, _, _):
                runIDs.append(request.runID)
            case .bounced(let mail, _): if let id = mail.runID { runIDs.append(id) }
            case .decided: break  // (DecidedNotices reads its run only when someone is to be told)
            }
        }
        // (A read waits for the store's writer on SQLite: the importer passes the runs its token
        // lookup found, so a batch's notices normally read nothing.)
        let missing = runIDs.filter { known[$0] == nil }
        let runs = missing.isEmpty ? known : known.merging(try await environment.store.runs(ids: missing)) { a, _ in a }
        let chunk = 64
        if notices.count <= chunk {
            var out: [[NewMail]] = []
            for notice in notices { out.append(try await mail(for: notice, composer: composer, runs: runs, now: now)) }
            return out
        }
        return try await withThrowingTaskGroup(of: (Int, [[NewMail]]).self) { group in
            for start in stride(from: 0, to: notices.count, by: chunk) {
                let part = Array(notices[start..<min(notices.count, start + chunk)])
                group.addTask {
                    var out: [[NewMail]] = []
                    for notice in part { out.append(try await mail(for: notice, composer: composer, runs: runs, now: now)) }
                    return (start, out)
                }
            }
            var out = [[NewMail]](repeating: [], count: notices.count)
            for try await (start, part) in group {
                for (i, mail) in part.enumerated() { out[start + i] = mail }
            }
            return out
        }
    }

    private func mail(for notice: ImportNotice, composer: MailComposer, runs: [String: RunRecord], now: Date) async throws -> [NewMail] {
        switch notice {
        case .confirmation(let request, let decision, let reviewer, let decided, let inReplyTo, _):
            var context = context(request, reviewer: reviewer, run: runs[request.runID])
            context.decision = .init(outcome: decided ? decision.kind : "vote: \(decision.kind)", by: reviewer, at: now)
            return try compose(composer, .confirmation, context, to: reviewer, inReplyTo: inReplyTo, request: request, now: now)
        case .decided(let request, let votes, let except):
            // The reviewers who had not answered are told that their answer is no longer needed.
            return await DecidedNotices(environment: environment).mail(for: request, votes: votes, except: except, now: now)
        case .clarification(let request, let reviewer, let reason, _, let inReplyTo, _):
            var context = context(request, reviewer: reviewer, run: runs[request.runID])
            context.clarificationProblem = reason
            return try compose(composer, .clarification, context, to: reviewer, inReplyTo: inReplyTo, request: request, now: now)
        case .alreadyDecided(let request, let reviewer, let inReplyTo, _):
            var context = context(request, reviewer: reviewer, run: runs[request.runID])
            context.decision = .init(outcome: request.decision ?? "decided", by: request.answeredBy, at: request.answeredAt)
            return try compose(composer, .alreadyDecided, context, to: reviewer, inReplyTo: inReplyTo, request: request, now: now)
        case .bounced(let mail, let reason):
            guard let runID = mail.runID, let run = runs[runID],
                  let owner = try? environment.catalog.job(named: run.job).owner else { return [] }
            let context = MailTemplateContext(
                job: .init(name: run.job), run: .init(id: run.id, attempt: run.attempt, owner: owner), stepID: "",
                request: .init(id: mail.requestID ?? run.id, title: "A request mail could not be delivered"),
                reviewer: EmailAddress(owner), failure: .init(recipient: mail.recipient, kind: mail.kind.rawValue, error: reason))
            let message = try composer.compose(.failure, context: context, to: EmailAddress(owner), date: now)
            return [NewMail(messageID: message.messageID, kind: .failure, recipient: owner, raw: Data(message.rfc5322()),
                            requestID: mail.requestID, runID: run.id)]
        }
    }

    func context(_ request: RequestRecord, reviewer: String, run: RunRecord?) -> MailTemplateContext {
        let human = ImportedRequests.human(request)
        return MailTemplateContext(
            job: .init(name: run?.job ?? "job"), run: .init(id: request.runID, attempt: run?.attempt ?? 1),
            stepID: request.stepID ?? "",
            request: .init(id: request.id, title: human?.title ?? "Request \(request.id)", body: human?.body,
                           responseKind: human?.mailResponseKind ?? .approval, choices: human?.choices ?? [],
                           reasonRequired: human?.requireReason ?? true),
            reviewer: EmailAddress.parseList(reviewer).first ?? EmailAddress(reviewer), deadline: request.dueAt)
    }

    func compose(_ composer: MailComposer, _ kind: MailTemplateKind, _ context: MailTemplateContext, to: String,
                 inReplyTo: String?, request: RequestRecord, now: Date) throws -> [NewMail] {
        let address = EmailAddress.parseList(to).first ?? EmailAddress(to)
        let message = try composer.compose(kind, context: context, to: address, inReplyTo: inReplyTo, date: now)
        let mailKind: MailKind = kind == .confirmation ? .confirmation : (kind == .clarification ? .clarification : .alreadyDecided)
        return [NewMail(messageID: message.messageID, kind: mailKind, recipient: address.address, raw: Data(message.rfc5322()),
                        requestID: request.id, runID: request.runID)]
    }
}
