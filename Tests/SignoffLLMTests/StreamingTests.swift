import Foundation
import SignoffTestSupport
import SignoffEngine
import SignoffLLM
import Testing

struct StreamingTests {
    @Test func streamYieldsTextDeltasThenUsageAndAsksForUsage() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"sse":[
              {"model":"llama3.1","choices":[{"index":0,"delta":{"role":"assistant","content":"Best "}}]},
              {"model":"llama3.1","choices":[{"index":0,"delta":{"content":"coffee."}}]},
              {"model":"llama3.1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]},
              {"model":"llama3.1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}},
              "[DONE]"], "chunk_delay":0.02}]
            """#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "llama3.1"),
                                          environment: [:])

        var updates: [ChatStreamUpdate] = []
        for try await update in client.stream([ChatMessage(role: .user, text: "Tagline?")], options: ChatOptions()) {
            updates.append(update)
        }

        #expect(updates.map(\.text).joined() == "Best coffee.")
        #expect(updates.compactMap(\.finishReason) == ["stop"])
        #expect(updates.last?.usage == ChatUsage(promptTokens: 12, completionTokens: 3))
        let request = try #require(try server.requests().first)
        #expect(request.header("Accept") == "text/event-stream")
        #expect(request.body == (try JSONValue(parsing: #"""
            {"model":"llama3.1","stream":true,"stream_options":{"include_usage":true},
             "messages":[{"role":"user","content":"Tagline?"}]}
            """#)))
    }

    @Test func streamedToolCallArgumentsAreJoined() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"sse":[
              {"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"lookup","arguments":""}}]}}]},
              {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]}}]},
              {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"tea\"}"}}]}}]},
              {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]},
              "[DONE]"]}]
            """#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m"),
                                          environment: [:])

        var calls: [ChatContent] = []
        for try await update in client.stream([ChatMessage(role: .user, text: "find tea")], options: ChatOptions()) {
            calls += update.functionCalls
        }
        #expect(calls == [.functionCall(callID: "call_9", name: "lookup", arguments: #"{"q":"tea"}"#)])
    }

    @Test func streamRetriesARateLimitBeforeTheFirstEvent() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":429,"headers":{"Retry-After":"2"},"body":{"error":{"message":"slow down"}}},
             {"sse":[{"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]},"[DONE]"]}]
            """#)
        defer { server.stop() }
        let sleeper = RecordingSleeper()
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m"),
                                          environment: [:],
                                          retry: RetryPolicy(maxRetries: 2, jitter: false, sleep: sleeper.sleep))
        var text = ""
        for try await update in client.stream([ChatMessage(role: .user, text: "hi")], options: ChatOptions()) {
            text += update.text
        }
        #expect(text == "ok")
        #expect(sleeper.delays == [.seconds(2)])
        #expect(try server.requests().count == 2)
    }

    @Test func streamReportsAnUnknownModelLikeComplete() async throws {
        let server = try await FakeLLMServer(script: #"[{"status":404,"body":{"error":{"message":"model 'x' not found"}}}]"#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "x"),
                                          environment: [:])
        let error = try await #require(throws: LLMError.self) {
            for try await _ in client.stream([ChatMessage(role: .user, text: "hi")], options: ChatOptions()) {}
        }
        #expect(error.code == .modelNotFound)
        #expect(error.message.contains(#"model "x""#))
    }
}
