import ArgumentParser
import Foundation
import SignoffRunner
import SignoffStore

/// `signoff respond REQUEST (--approve [--comment C] | --reject REASON | --value V) --as EMAIL`.
struct RespondCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "respond", abstract: "Answer a request from the command line.",
        discussion: """
            Records a vote by --as, who must be one of the request's reviewers (or pass --override to decide as an operator). Exit 3 for an unknown request, 4 when it is already decided or the answer is forbidden (e.g. self-approval under `forbid: [requester]`).
            """)

    @Argument(help: "The request id (see `signoff pending`).")
    var request: String

    @Flag(help: "Approve.")
    var approve = false

    @Option(help: "A comment with --approve.")
    var comment: String?

    @Option(help: ArgumentHelp("Reject, with this reason.", valueName: "reason"))
    var reject: String?

    @Option(help: ArgumentHelp("Answer a typed question (ask step).", valueName: "value"))
    var value: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("Who answers.", valueName: "email"))
    var responder: String

    @Flag(help: "Decide as an operator even if --as is not a reviewer.")
    var override = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        let chosen = [approve, reject != nil, value != nil].filter { $0 }.count
        if chosen != 1 { throw ValidationError("give exactly one of --approve, --reject REASON, --value VALUE") }
        if comment != nil, !approve { throw ValidationError("--comment goes with --approve; a rejection's reason is the value of --reject") }
        if !responder.contains("@") { throw ValidationError("--as takes an email address, not `\(responder)`") }
    }

    func run() async throws {
        try await reporting {
            try await global.withEnvironment { environment in
                let store = environment.store
                guard let record = try await store.request(id: request) else {
                    throw RunnerError.notFound("request.not_found", "no request with id `\(request)`; list open ones with `signoff pending`")
                }
                guard record.status == .pending else {
                    throw RunnerError.conflict("request.decided", "request \(request) is \(record.status.rawValue)\(record.decision.map { " (\($0) by \(record.answeredBy ?? "?"))" } ?? ""); nothing was changed")
                }
                let human = try? HumanRequest.decode(record.requestData)
                let isReviewer = record.reviewers.contains { $0.lowercased() == responder.lowercased() }
                if !isReviewer, !override {
                    throw RunnerError.conflict("request.not_reviewer", "\(responder) is not a reviewer of request \(request) (reviewers: \(record.reviewers.joined(separator: ", "))); answer as one of them, or pass --override to decide as an operator")
                }
                if let reason = try await RequestPolicies.forbiddenReason(responder, request: record, store: store) {
                    throw RunnerError.conflict("request.forbidden", "\(responder) may not answer request \(request): \(reason)")
                }
                let verdict: Verdict
                let response: Data
                var reason: String?
                if approve {
                    verdict = .approve; reason = comment
                    response = HumanResponse.approve(comment: comment, by: responder, via: "cli")
                } else if let reject {
                    verdict = .reject; reason = reject
                    response = HumanResponse.reject(reason: reject, by: responder, via: "cli")
                } else {
                    let parsed = try Self.parseValue(value ?? "", for: human)
                    verdict = .value
                    response = HumanResponse.value(parsed, by: responder, via: "cli")
                }
                if human?.kind == .approval, verdict == .value {
                    throw RunnerError.usage("respond.kind", "request \(request) is an approval; answer with --approve or --reject REASON")
                }
                if human?.kind == .value, verdict != .value {
                    throw RunnerError.usage("respond.kind", "request \(request) asks for a value; answer with --value VALUE")
                }
                let result = try await store.answer(Answer(requestID: request, reviewer: responder, verdict: verdict, response: response,
                                                           reason: reason, channel: .cli, via: "cli", at: Date(),
                                                           decisive: override && !isReviewer))
                if result.decided {
                    let notices = await RequestPolicies.decidedNotices(environment, request: result.request, votes: result.votes,
                                                                       except: responder, now: Date())
                    if !notices.isEmpty { try await store.enqueueMail(notices, now: Date()) }
                }
                Console.out(result.decided ? "request \(request) decided: \(verdict.rawValue); run \(record.runID) is queued (signoff run)"
                                           : "vote recorded; request \(request) waits for more answers (\(result.votes.count) so far)")
            }
        }
    }

    static func parseValue(_ text: String, for request: HumanRequest?) throws -> JobValue {
        switch request?.valueType ?? .text {
        case .number:
            guard let n = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw RunnerError.usage("respond.value", "the request asks for a number; `\(text)` is not one")
            }
            return .number(n)
        case .choice:
            let choices = request?.choices ?? []
            guard let match = choices.first(where: { $0.lowercased() == text.lowercased() }) else {
                throw RunnerError.usage("respond.value", "the request asks for one of: \(choices.joined(separator: ", ")); `\(text)` is not one")
            }
            return .string(match)
        case .date:
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "yyyy-MM-dd"
            guard f.date(from: text) != nil else { throw RunnerError.usage("respond.value", "the request asks for a date as YYYY-MM-DD; `\(text)` is not one") }
            return .string(text)
        case .text:
            return .string(text)
        }
    }
}
