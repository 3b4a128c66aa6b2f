import SignoffEngine
import SignoffLLM
import SignoffTestSupport
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

struct LLMStepTests {
    @Test func regeneratedRequestCarriesTheFeedbackAndTheDraft() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"Best coffee, now $3.","usage":[30,6]}]"#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "llama3.1"),
                                          environment: [:])

        let output = try await LLMStep.generate(client: client, system: "Be concise.", prompt: "Write a tagline.",
                                                rounds: [.init(draft: "Best coffee.", feedback: ["Mention the price."])],
                                                options: ChatOptions(temperature: 0))

        #expect(output == LLMStepOutput(text: "Best coffee, now $3.", usage: ChatUsage(promptTokens: 30, completionTokens: 6), model: "fake-model"))
        let body = try #require(try server.requests().first?.body)
        #expect(body == (try JSONValue(parsing: #"""
            {"model":"llama3.1","temperature":0,"messages":[
              {"role":"system","content":"Be concise."},
              {"role":"user","content":"Write a tagline."},
              {"role":"assistant","content":"Best coffee."},
              {"role":"system","content":"Mention the price."},
              {"role":"system","content":"Please incorporate the feedback and regenerate the response."},
              {"role":"user","content":"Write a tagline."}]}
            """#)))
    }
}
