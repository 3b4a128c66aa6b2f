import Foundation
import SignoffEngine

/// What an `llm` step produces: the draft text (`steps.ID.text`) and what it cost.
public struct LLMStepOutput: Codable, Sendable, Hashable {
    /// The assistant's text.
    public var text: String
    /// Token counts, when the provider reported them.
    public var usage: ChatUsage?
    /// The model the provider says answered.
    public var model: String?

    public init(text: String, usage: ChatUsage? = nil, model: String? = nil) {
        self.text = text
        self.usage = usage
        self.model = model
    }
}

/// Runs one attempt of an `llm` step: builds the seed-shaped messages with ``LLMStepPrompt``
/// and asks the client.
public enum LLMStep {
    /// Generates the draft for attempt `rounds.count + 1`.
    ///
    /// - Parameters:
    ///   - client: any ``ChatClient`` (``OpenAIChatClient`` in production, a scripted one in tests).
    ///   - system: the step's `system:` text (already templated), or nil.
    ///   - prompt: the step's `prompt:` text (already templated).
    ///   - rounds: every earlier rejected draft with its reviewer feedback, oldest first.
    ///   - options: the step's `model`, `temperature`, `max_tokens` (nil: the `llm:` defaults).
    public static func generate(client: any ChatClient, system: String?, prompt: String,
                                rounds: [LLMStepPrompt.Round] = [], options: ChatOptions = ChatOptions()) async throws -> LLMStepOutput {
        let messages = LLMStepPrompt.messages(system: system, prompt: prompt, rounds: rounds)
        let response = try await client.complete(messages, options: options)
        let text = response.messages.last(where: { $0.role == .assistant })?.text ?? response.text
        return LLMStepOutput(text: text, usage: response.usage, model: response.model)
    }
}
