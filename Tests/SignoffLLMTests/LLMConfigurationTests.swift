import Foundation
import SignoffLLM
import Testing

struct LLMConfigurationTests {
    @Test func decodesTheSignoffYamlBlockWithSnakeCaseKeys() throws {
        let json = #"""
        {"provider":"azure","base_url":"http://x/v1","model":"m","api_key_file":"/k","api_key_env":"K",
         "azure":{"endpoint":"https://r.openai.azure.com","deployment":"d","api_version":"2024-06-01",
                  "token_file":"/t","token_env":"T"},
         "timeout":30,"connect_timeout":5,"max_retries":1}
        """#
        let c = try JSONDecoder().decode(LLMConfiguration.self, from: Data(json.utf8))
        #expect(c.provider == .azure)
        #expect(c.baseURL == "http://x/v1")
        #expect(c.apiKeyFile == "/k")
        #expect(c.apiKeyEnv == "K")
        #expect(c.azure == .init(endpoint: "https://r.openai.azure.com", deployment: "d", apiVersion: "2024-06-01",
                                 tokenFile: "/t", tokenEnv: "T"))
        #expect(c.effectiveTimeout == 30)
        #expect(c.effectiveConnectTimeout == 5)
        #expect(c.effectiveMaxRetries == 1)
    }

    @Test func emptyBlockDefaultsToOpenAIWithBoundedTimeouts() throws {
        let c = try JSONDecoder().decode(LLMConfiguration.self, from: Data("{}".utf8))
        #expect(c.provider == .openai)
        #expect(c.effectiveTimeout == 120)
        #expect(c.effectiveConnectTimeout == 10)
        #expect(c.effectiveMaxRetries == 3)
    }

    @Test func environmentOverridesTheFile() throws {
        let c = try LLMConfiguration(baseURL: "http://file/v1", model: "file-model").applyingEnvironment([
            "SIGNOFF_LLM_BASE_URL": "http://127.0.0.1:11434/v1", "SIGNOFF_LLM_MODEL": "llama3.1",
            "SIGNOFF_LLM_TIMEOUT": "45", "SIGNOFF_LLM_MAX_RETRIES": "0",
        ])
        #expect(c.baseURL == "http://127.0.0.1:11434/v1")
        #expect(c.model == "llama3.1")
        #expect(c.effectiveTimeout == 45)
        #expect(c.effectiveMaxRetries == 0)
    }

    @Test func badEnvironmentNumberIsAConfigurationError() {
        #expect(throws: LLMError.self) {
            try LLMConfiguration().applyingEnvironment(["SIGNOFF_LLM_TIMEOUT": "soon"])
        }
    }

    @Test func credentialPrecedenceForOpenAI() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-llm-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("key")
        try Data("  from-file \n".utf8).write(to: file)
        let c = LLMConfiguration(apiKeyFile: file.path)

        #expect(try c.resolveCredential(environment: ["SIGNOFF_LLM_API_KEY": "from-env"]) == .bearer("from-env", source: "SIGNOFF_LLM_API_KEY"))
        #expect(try c.resolveCredential(environment: ["OPENAI_API_KEY": "fallback"]).source?.hasPrefix("llm.api_key_file") == true)
        if case .bearer(let key, _) = try c.resolveCredential(environment: [:]) { #expect(key == "from-file") } else { Issue.record("expected a bearer key") }
        #expect(try LLMConfiguration().resolveCredential(environment: ["OPENAI_API_KEY": "o"]) == .bearer("o", source: "OPENAI_API_KEY"))
        #expect(try LLMConfiguration().resolveCredential(environment: [:]) == .none)
    }

    @Test func unreadableKeyFileNamesTheSettingNotTheContent() throws {
        let error = try #require(throws: LLMError.self) {
            try LLMConfiguration(apiKeyFile: "/nonexistent/signoff.key").resolveCredential(environment: [:])
        }
        #expect(error.code == .configuration)
        #expect(error.message.contains("llm.api_key_file /nonexistent/signoff.key"))
    }

    @Test func apiKeyEnvNamingAnUnsetVariableIsAnError() throws {
        let error = try #require(throws: LLMError.self) {
            try LLMConfiguration(apiKeyEnv: "MY_KEY").resolveCredential(environment: [:])
        }
        #expect(error.message.contains("MY_KEY"))
    }

    @Test func azureWithoutAnyCredentialSaysWhatToSet() throws {
        let c = LLMConfiguration(provider: .azure, azure: .init(endpoint: "https://r.openai.azure.com", deployment: "d"))
        let error = try #require(throws: LLMError.self) { try c.resolveCredential(environment: [:]) }
        #expect(error.fix.contains("AZURE_OPENAI_API_KEY"))
        #expect(error.fix.contains("az account get-access-token"))
        #expect(try c.resolveCredential(environment: ["AZURE_OPENAI_API_KEY": "k"]) == .apiKey("k", source: "AZURE_OPENAI_API_KEY"))
    }

    @Test func descriptionsNeverShowTheKey() throws {
        let c = LLMConfiguration(model: "m", apiKey: "sk-inline-secret-1")
        #expect(!c.description.contains("sk-inline-secret-1"))
        #expect(!"\(c)".contains("sk-inline-secret-1"))
        let credential = try c.resolveCredential(environment: [:])
        #expect(!"\(credential)".contains("sk-inline-secret-1"))
        #expect(!String(reflecting: credential).contains("sk-inline-secret-1"))
    }

    @Test func azureEndpointNeedsADeployment() {
        let c = LLMConfiguration(provider: .azure, azure: .init(endpoint: "https://r.openai.azure.com"))
        #expect(throws: LLMError.self) {
            try OpenAIChatClient(resolved: c, credential: .apiKey("k", source: "test"))
        }
    }

    @Test func nonHTTPBaseURLIsRejected() {
        #expect(throws: LLMError.self) {
            try OpenAIChatClient(configuration: LLMConfiguration(baseURL: "file:///etc/passwd", model: "m"), environment: [:])
        }
    }
}

struct RetryPolicyTests {
    @Test func retryAfterInSecondsAndAsHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryPolicy.retryAfter(headers: ["retry-after": "3"], now: now) == .seconds(3))
        #expect(RetryPolicy.retryAfter(headers: ["retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"], now: now) == .seconds(30))
        #expect(RetryPolicy.retryAfter(headers: ["retry-after": "Tue, 14 Nov 2023 22:00:00 GMT"], now: now) == .zero)
        #expect(RetryPolicy.retryAfter(headers: ["retry-after-ms": "1500"], now: now) == .milliseconds(1500))
        #expect(RetryPolicy.retryAfter(headers: ["retry-after": "later"], now: now) == nil)
        #expect(RetryPolicy.retryAfter(headers: [:], now: now) == nil)
    }

    @Test func delayIsCappedAndExponentialWithoutJitter() {
        let p = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(5), jitter: false)
        #expect((0..<4).map { p.delay(attempt: $0, headers: [:]) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(5)])
        #expect(p.delay(attempt: 0, headers: ["retry-after": "3600"]) == .seconds(5))
    }
}

struct HTTPRequestTests {
    @Test func descriptionNeverShowsHeaderValues() {
        let r = HTTPRequest(url: "http://127.0.0.1/v1/chat/completions", headers: [("Authorization", "Bearer sk-hidden-999")],
                            body: Data("{}".utf8), connectTimeout: 1, timeout: 2)
        #expect(!"\(r)".contains("sk-hidden-999"))
        #expect(!String(reflecting: r).contains("sk-hidden-999"))
        #expect("\(r)".contains("Authorization"))
    }
}
