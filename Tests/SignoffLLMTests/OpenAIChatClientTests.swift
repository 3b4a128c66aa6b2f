import Foundation
import SignoffTestSupport
import SignoffEngine
import SignoffLLM
import Testing

/// The chat client against scripts/fake_llm_server.py on a free loopback port.
struct OpenAIChatClientTests {
    static let conversation: [ChatMessage] = [
        ChatMessage(role: .system, text: "You are a helpful assistant. Be concise."),
        ChatMessage(role: .user, text: "Write a tagline.", authorName: "alice"),
        ChatMessage(role: .assistant, contents: [
            .text("Let me look that up."),
            .functionCall(callID: "call_1", name: "lookup", arguments: #"{"q":"coffee"}"#),
        ]),
        ChatMessage(role: .tool, contents: [.functionResult(callID: "call_1", result: #"{"hits":2}"#)]),
        ChatMessage(role: .user, text: "Go on."),
    ]

    static let lookupTool = ChatToolDefinition(
        name: "lookup", description: "Search the catalogue",
        parameters: .object(["type": .string("object"),
                             "properties": .object(["q": .object(["type": .string("string")])]),
                             "required": .array([.string("q")])]))

    static let expectedMessages = #"""
    [{"role":"system","content":"You are a helpful assistant. Be concise."},
     {"role":"user","content":"Write a tagline.","name":"alice"},
     {"role":"assistant","content":"Let me look that up.",
      "tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"coffee\"}"}}]},
     {"role":"tool","tool_call_id":"call_1","content":"{\"hits\":2}"},
     {"role":"user","content":"Go on."}]
    """#

    static let expectedTools = #"""
    [{"type":"function","function":{"name":"lookup","description":"Search the catalogue",
      "parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}]
    """#

    static let toolCallAnswer = #"""
    [{"status":200,"body":{"id":"chatcmpl-1","object":"chat.completion","model":"llama3.1",
      "choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,
        "tool_calls":[{"id":"call_2","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"tea\"}"}}]}}],
      "usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}}]
    """#

    static func fastRetry(_ sleeper: RecordingSleeper, maxRetries: Int = 3) -> RetryPolicy {
        RetryPolicy(maxRetries: maxRetries, baseDelay: .milliseconds(250), jitter: false, sleep: sleeper.sleep)
    }

    @Test func openAIRequestCarriesModelOptionsToolCallsAndBearerKey() async throws {
        let server = try await FakeLLMServer(script: Self.toolCallAnswer)
        defer { server.stop() }
        let config = LLMConfiguration(provider: .openai, baseURL: server.baseURL + "/v1", model: "llama3.1")
        let client = try OpenAIChatClient(configuration: config, environment: ["SIGNOFF_LLM_API_KEY": "sk-test-123"])

        let response = try await client.complete(Self.conversation, options: ChatOptions(temperature: 0.2, maxTokens: 100),
                                                 tools: [Self.lookupTool])

        let requests = try server.requests()
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.method == "POST")
        #expect(request.path == "/v1/chat/completions")
        #expect(request.header("Authorization") == "Bearer sk-test-123")
        #expect(request.header("api-key") == nil)
        #expect(request.header("Content-Type") == "application/json")
        let expected = try JSONValue(parsing: """
            {"model":"llama3.1","temperature":0.2,"max_tokens":100,
             "messages":\(Self.expectedMessages),"tools":\(Self.expectedTools)}
            """)
        #expect(request.body == expected)

        let message = try #require(response.messages.first)
        #expect(message.role == .assistant)
        #expect(message.contents == [.functionCall(callID: "call_2", name: "lookup", arguments: #"{"q":"tea"}"#)])
        #expect(response.usage == ChatUsage(promptTokens: 11, completionTokens: 7))
        #expect(response.model == "llama3.1")
    }

    @Test func azureRequestUsesDeploymentPathApiVersionAndApiKeyHeader() async throws {
        let server = try await FakeLLMServer(script: Self.toolCallAnswer)
        defer { server.stop() }
        let keyFile = server.directory.appendingPathComponent("azure.key")
        try Data("azure-secret-key\n".utf8).write(to: keyFile)
        let config = LLMConfiguration(provider: .azure, azure: .init(
            endpoint: server.baseURL + "/", deployment: "gpt-4o-prod", apiVersion: "2024-10-21", apiKeyFile: keyFile.path))
        let client = try OpenAIChatClient(configuration: config, environment: [:])

        let response = try await client.complete(Self.conversation, options: ChatOptions(model: "ignored-on-azure", temperature: 0.2, maxTokens: 100),
                                                 tools: [Self.lookupTool])

        let request = try #require(try server.requests().first)
        #expect(request.path == "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21")
        #expect(request.header("api-key") == "azure-secret-key")
        #expect(request.header("Authorization") == nil)
        // Azure takes the model from the deployment: no "model" in the body.
        let expected = try JSONValue(parsing: """
            {"temperature":0.2,"max_tokens":100,"messages":\(Self.expectedMessages),"tools":\(Self.expectedTools)}
            """)
        #expect(request.body == expected)
        #expect(response.usage?.totalTokens == 18)
    }

    @Test func azureSendsBearerTokenFromTokenEnvironmentVariable() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"ok"}]"#)
        defer { server.stop() }
        let config = LLMConfiguration(provider: .azure, azure: .init(
            endpoint: server.baseURL, deployment: "d1", tokenEnv: "MY_AZ_TOKEN"))
        let client = try OpenAIChatClient(configuration: config, environment: ["MY_AZ_TOKEN": "eyJ.token"])

        let response = try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())

        let request = try #require(try server.requests().first)
        #expect(request.header("Authorization") == "Bearer eyJ.token")
        #expect(request.header("api-key") == nil)
        #expect(request.path == "/openai/deployments/d1/chat/completions?api-version=\(LLMConfiguration.defaultAzureAPIVersion)")
        #expect(response.text == "ok")
    }

    @Test func localServerWithoutKeySendsNoAuthorizationAndRecordsUsage() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"A fine draft.","usage":[42,9]}]"#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "llama3.1"),
                                          environment: [:])

        let response = try await client.complete(LLMStepPrompt.messages(system: "Be concise.", prompt: "Draft it."), options: ChatOptions())

        #expect(response.text == "A fine draft.")
        #expect(response.usage == ChatUsage(promptTokens: 42, completionTokens: 9))
        #expect(response.usage?.totalTokens == 51)
        let request = try #require(try server.requests().first)
        #expect(request.header("Authorization") == nil)
        #expect(request.body == (try JSONValue(parsing: #"""
            {"model":"llama3.1","messages":[{"role":"system","content":"Be concise."},{"role":"user","content":"Draft it."}]}
            """#)))
    }

    @Test func rateLimitIsRetriedAfterTheRetryAfterDelay() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":429,"headers":{"Retry-After":"7"},"body":{"error":{"message":"Rate limit reached","type":"requests"}}},
             {"reply":"after the wait","usage":[5,3]}]
            """#)
        defer { server.stop() }
        let sleeper = RecordingSleeper()
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m"),
                                          environment: [:], retry: Self.fastRetry(sleeper))

        let response = try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())

        #expect(response.text == "after the wait")
        #expect(sleeper.delays == [.seconds(7)], "the client should wait exactly the Retry-After seconds")
        let requests = try server.requests()
        #expect(requests.count == 2)
        #expect(requests.map(\.body) == [requests[0].body, requests[0].body], "the retry resends the same body")
    }

    @Test func serverErrorsBackOffExponentiallyThenGiveUpWithTheStatus() async throws {
        let server = try await FakeLLMServer(script: #"[{"status":503,"body":{"error":{"message":"overloaded"}}}]"#)
        defer { server.stop() }
        let sleeper = RecordingSleeper()
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m"),
                                          environment: [:], retry: Self.fastRetry(sleeper, maxRetries: 2))

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .serverError)
        #expect(error.status == 503)
        #expect(error.message.contains("overloaded"))
        #expect(sleeper.delays == [.milliseconds(250), .milliseconds(500)])
        #expect(try server.requests().count == 3)
    }

    @Test func slowServerFailsWithTheTotalTimeoutNamed() async throws {
        let server = try await FakeLLMServer(script: #"[{"delay":60,"reply":"too late"}]"#)
        defer { server.stop() }
        let config = LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m", timeout: 0.5, connectTimeout: 2, maxRetries: 0)
        let client = try OpenAIChatClient(configuration: config, environment: [:])

        let started = ContinuousClock.now
        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .timeout)
        #expect(error.message.contains("llm.timeout (0.5s)"))
        // The server would answer after 60 s; finishing well before that proves the timeout cut the
        // request short. The bound is loose on purpose: a loaded CI machine schedules slowly.
        #expect(ContinuousClock.now - started < .seconds(30), "the request should stop at the 0.5 s timeout, not wait for the server")
    }

    @Test func unauthorizedNamesTheKeySettingAndNeverTheKey() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":401,"body":{"error":{"message":"Incorrect API key provided: sk-live-abcdef123456. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}}]
            """#)
        defer { server.stop() }
        let keyFile = server.directory.appendingPathComponent("openai.key")
        try Data("sk-live-abcdef123456".utf8).write(to: keyFile)
        let sleeper = RecordingSleeper()
        let config = LLMConfiguration(baseURL: server.baseURL + "/v1", model: "gpt-4o-mini", apiKeyFile: keyFile.path)
        let client = try OpenAIChatClient(configuration: config, environment: [:], retry: Self.fastRetry(sleeper))

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .unauthorized)
        #expect(error.status == 401)
        #expect(error.description.contains("llm.api_key_file"))
        #expect(error.description.contains("SIGNOFF_LLM_API_KEY"))
        #expect(!error.description.contains("abcdef123456"), "the key must not appear: \(error)")
        #expect(sleeper.delays.isEmpty, "a 401 is not retried")
        #expect(try server.requests().first?.header("Authorization") == "Bearer sk-live-abcdef123456")
    }

    @Test func azureUnauthorizedNamesTheAzureKeySettings() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":401,"body":{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}}]
            """#)
        defer { server.stop() }
        let config = LLMConfiguration(provider: .azure, azure: .init(endpoint: server.baseURL, deployment: "d1"))
        let client = try OpenAIChatClient(configuration: config, environment: ["AZURE_OPENAI_API_KEY": "azkey-0987654321"])

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .unauthorized)
        #expect(error.fix.contains("api-key"))
        #expect(error.fix.contains("AZURE_OPENAI_API_KEY"))
        #expect(!error.description.contains("azkey-0987654321"))
    }

    @Test func unknownModelNamesTheModel() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":404,"body":{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error"}}}]
            """#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "llama3.1"),
                                          environment: [:])

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions(model: "llama9"))
        }
        #expect(error.code == .modelNotFound)
        #expect(error.message.contains(#"model "llama9" was not found"#))
        #expect(error.fix.contains("ollama pull llama9"))
        #expect(try server.requests().first?.body.flatMap { if case .object(let o) = $0 { o["model"] } else { nil } } == .string("llama9"))
    }

    @Test func unknownAzureDeploymentNamesTheDeployment() async throws {
        let server = try await FakeLLMServer(script: #"""
            [{"status":404,"body":{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}}]
            """#)
        defer { server.stop() }
        let config = LLMConfiguration(provider: .azure, azure: .init(endpoint: server.baseURL, deployment: "gpt-5-typo"))
        let client = try OpenAIChatClient(configuration: config, environment: ["AZURE_OPENAI_API_KEY": "k123456"])

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .modelNotFound)
        #expect(error.message.contains(#"deployment "gpt-5-typo""#))
        #expect(error.fix.contains("llm.azure.deployment"))
    }

    @Test(arguments: [
        #"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        #"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}"#,
    ])
    func contextLengthErrorSaysSo(body: String) async throws {
        let server = try await FakeLLMServer(script: #"[{"status":400,"body":"# + body + "}]")
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "small"),
                                          environment: [:])

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "a very long prompt")], options: ChatOptions())
        }
        #expect(error.code == .contextLengthExceeded)
        #expect(error.message.contains("too long for model small's context window"))
    }

    @Test func connectionRefusedNamesTheBaseURLAndSuggestsOllamaServe() async throws {
        // Start and stop a server to get a loopback port where nothing listens any more.
        let server = try await FakeLLMServer(script: "[]")
        let deadURL = server.baseURL + "/v1"
        server.stop()
        let sleeper = RecordingSleeper()
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: deadURL, model: "m"),
                                          environment: [:], retry: Self.fastRetry(sleeper, maxRetries: 1))

        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains(deadURL))
        #expect(error.fix.contains("ollama serve"))
        #expect(sleeper.delays.count == 1, "a refused connection is retried")
    }

    @Test func missingModelIsAConfigurationErrorBeforeAnyRequest() async throws {
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: "http://127.0.0.1:9/v1"), environment: [:])
        let error = try await #require(throws: LLMError.self) {
            try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions())
        }
        #expect(error.code == .configuration)
        #expect(error.fix.contains("llm.model"))
    }
}

struct OpenAIChatClientCancellationTests {
    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        let server = try await FakeLLMServer(script: #"[{"delay":20,"reply":"never seen"}]"#)
        defer { server.stop() }
        let client = try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "m", timeout: 30),
                                          environment: [:])
        let started = ContinuousClock.now
        let task = Task { try await client.complete([ChatMessage(role: .user, text: "hi")], options: ChatOptions()) }
        // Wait until the request reached the server, then cancel.
        while try server.requests().isEmpty, ContinuousClock.now - started < .seconds(10) {
            try await Task.sleep(for: .milliseconds(50))
        }
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(ContinuousClock.now - started < .seconds(10), "cancellation should stop the transfer, not wait for the 20 s delay")
    }
}
