import SignoffEngine
import SignoffLLM
import Testing

struct LLMStepPromptTests {
    @Test func firstAttemptIsSystemThenPrompt() {
        #expect(LLMStepPrompt.messages(system: "Be concise.", prompt: "Write a tagline.") == [
            ChatMessage(role: .system, text: "Be concise."),
            ChatMessage(role: .user, text: "Write a tagline."),
        ])
        #expect(LLMStepPrompt.messages(system: nil, prompt: "Hi") == [ChatMessage(role: .user, text: "Hi")])
    }

    @Test func regenerationFollowsTheSeedShape() {
        let messages = LLMStepPrompt.messages(system: "Be concise.", prompt: "Write a tagline.",
                                              feedback: ["Mention the price."], previousDraft: "Best coffee.")
        #expect(messages == [
            ChatMessage(role: .system, text: "Be concise."),
            ChatMessage(role: .user, text: "Write a tagline."),
            ChatMessage(role: .assistant, text: "Best coffee."),
            ChatMessage(role: .system, text: "Mention the price."),
            ChatMessage(role: .system, text: "Please incorporate the feedback and regenerate the response."),
            ChatMessage(role: .user, text: "Write a tagline."),
        ])
    }

    @Test func secondRejectionKeepsTheWholeConversation() {
        let messages = LLMStepPrompt.messages(system: ["A.", "B."], prompt: ["P"], rounds: [
            .init(draft: "d1", feedback: ["f1"]),
            .init(draft: "d2", feedback: ["f2a", "", "f2b"]),
        ])
        #expect(messages.map(\.role) == [.system, .system, .user,
                                         .assistant, .system, .system, .user,
                                         .assistant, .system, .system, .system, .user])
        #expect(messages.map(\.text) == ["A.", "B.", "P",
                                         "d1", "f1", LLMStepPrompt.regenerateInstruction, "P",
                                         "d2", "f2a", "f2b", LLMStepPrompt.regenerateInstruction, "P"])
    }
}
