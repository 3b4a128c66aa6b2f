import Foundation
import SignoffEngine

/// Builds the messages an `llm` step sends, including the regeneration after a reviewer rejects
/// the draft, exactly as the first seed's Worker does it.
///
/// First attempt:
///
///     system   <system>                 (one message per system text; none if empty)
///     user     <prompt>
///
/// After rejection `n` (the conversation grows; nothing is dropped):
///
///     system   <system>
///     user     <prompt>
///     assistant <draft 1>
///     system   <feedback 1>              (one message per feedback text of that round)
///     system   "Please incorporate the feedback and regenerate the response."
///     user     <prompt>                  (the user messages again)
///     assistant <draft 2>
///     system   <feedback 2>
///     system   "Please incorporate the feedback and regenerate the response."
///     user     <prompt>
///     …
///
/// The runner keeps the rounds (draft + feedback) in the step's state and calls
/// ``messages(system:prompt:rounds:)`` on every attempt; the returned list ends with a user
/// message, ready for ``OpenAIChatClient/complete(_:options:)``.
public enum LLMStepPrompt {
    /// The instruction the seed adds after the reviewer's feedback.
    public static let regenerateInstruction = "Please incorporate the feedback and regenerate the response."

    /// One rejected attempt: the draft the reviewer saw and what they said.
    public struct Round: Codable, Sendable, Hashable {
        /// The draft that was rejected (the assistant's text).
        public var draft: String
        /// The reviewer feedback; each entry becomes one system message. Empty entries are skipped.
        public var feedback: [String]

        public init(draft: String, feedback: [String]) {
            self.draft = draft
            self.feedback = feedback
        }
    }

    /// The messages for an attempt after `rounds` rejections (none: the first attempt).
    public static func messages(system: [String], prompt: [String], rounds: [Round]) -> [ChatMessage] {
        let systemMessages = system.filter { !$0.isEmpty }.map { ChatMessage(role: .system, text: $0) }
        let userMessages = prompt.map { ChatMessage(role: .user, text: $0) }
        var out = systemMessages + userMessages
        for round in rounds {
            out.append(ChatMessage(role: .assistant, text: round.draft))
            for feedback in round.feedback where !feedback.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                out.append(ChatMessage(role: .system, text: feedback))
            }
            out.append(ChatMessage(role: .system, text: regenerateInstruction))
            out.append(contentsOf: userMessages)
        }
        return out
    }

    /// One system text and one prompt.
    public static func messages(system: String?, prompt: String, rounds: [Round]) -> [ChatMessage] {
        messages(system: system.map { [$0] } ?? [], prompt: [prompt], rounds: rounds)
    }

    /// The step's usual call: `feedback` and `previousDraft` are those of the latest rejection
    /// (nil/empty on the first attempt). Equivalent to one ``Round``. When a draft is rejected
    /// more than once, keep every round and use ``messages(system:prompt:rounds:)`` so the
    /// conversation matches the seed's growing history.
    public static func messages(system: String?, prompt: String, feedback: [String]? = nil, previousDraft: String? = nil) -> [ChatMessage] {
        let feedback = feedback ?? []
        guard previousDraft != nil || !feedback.isEmpty else {
            return messages(system: system, prompt: prompt, rounds: [])
        }
        if let previousDraft {
            return messages(system: system, prompt: prompt, rounds: [Round(draft: previousDraft, feedback: feedback)])
        }
        // Feedback without a draft (the draft was lost): the seed's shape minus the assistant turn.
        var out = messages(system: system, prompt: prompt, rounds: [])
        for f in feedback where !f.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            out.append(ChatMessage(role: .system, text: f))
        }
        out.append(ChatMessage(role: .system, text: regenerateInstruction))
        out.append(ChatMessage(role: .user, text: prompt))
        return out
    }
}
