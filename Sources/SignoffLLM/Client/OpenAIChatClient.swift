import Foundation
import Logging
import SignoffEngine

/// A ``ChatClient`` speaking the chat-completions protocol: OpenAI, Ollama, vLLM, llama.cpp's
/// server and LM Studio (`provider: openai`, `base_url + /chat/completions`, optional bearer key),
/// and Azure OpenAI (`provider: azure`, `endpoint/openai/deployments/{deployment}/chat/completions
/// ?api-version=…`, `api-key` header or an Entra bearer token).
///
/// - Timeouts: `connect_timeout` and `timeout` bound every attempt.
/// - 429, 5xx and connection failures are retried per ``RetryPolicy`` (honouring `Retry-After`).
/// - Function calls: ``ChatContent/functionCall(callID:name:arguments:)`` in an assistant message
///   is sent as `tool_calls`; ``ChatContent/functionResult(callID:result:)`` as a `role: tool`
///   message; tool calls in the answer come back as `functionCall` contents.
/// - Errors are ``LLMError``s; the credential never appears in them or in logs.
public struct OpenAIChatClient: ChatClient {
    /// The configuration in effect (environment overrides already applied).
    public let configuration: LLMConfiguration
    /// Where requests go: the full URL (no secrets in it).
    public let endpoint: String
    /// Retry behaviour; replace `sleep`/`now` in tests.
    public var retry: RetryPolicy
    let credential: LLMCredential
    let transport: any HTTPTransport
    let logger: Logger

    /// Builds a client from signoff.yaml's `llm:` block: applies environment overrides
    /// (``LLMConfiguration/applyingEnvironment(_:)``), resolves the credential
    /// (``LLMConfiguration/resolveCredential(environment:)``) and validates the endpoint.
    public init(configuration: LLMConfiguration,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                transport: any HTTPTransport = CurlHTTPTransport(),
                retry: RetryPolicy? = nil,
                logger: Logger = Logger(label: "signoff.llm")) throws {
        let effective = try configuration.applyingEnvironment(environment)
        let credential = try effective.resolveCredential(environment: environment)
        try self.init(resolved: effective, credential: credential, transport: transport, retry: retry, logger: logger)
    }

    /// Builds a client from a configuration taken as is and an explicit credential.
    public init(resolved configuration: LLMConfiguration, credential: LLMCredential,
                transport: any HTTPTransport = CurlHTTPTransport(),
                retry: RetryPolicy? = nil,
                logger: Logger = Logger(label: "signoff.llm")) throws {
        self.configuration = configuration
        self.credential = credential
        self.transport = transport
        self.retry = retry ?? RetryPolicy(maxRetries: configuration.effectiveMaxRetries)
        self.logger = logger
        self.endpoint = try Self.endpointURL(configuration)
    }

    static func endpointURL(_ c: LLMConfiguration) throws -> String {
        func checked(_ raw: String, setting: String) throws -> String {
            var s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            while s.hasSuffix("/") { s.removeLast() }
            guard let url = URL(string: s), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  url.host != nil else {
                throw LLMError(code: .configuration, message: "\(setting) \(raw) is not an http(s) URL",
                               fix: "write it like http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1")
            }
            return s
        }
        switch c.provider {
        case .openai:
            let base = try checked(c.baseURL ?? LLMConfiguration.defaultBaseURL, setting: "llm.base_url")
            return base.hasSuffix("/chat/completions") ? base : base + "/chat/completions"
        case .azure:
            guard let rawEndpoint = c.azure?.endpoint, !rawEndpoint.isEmpty else {
                throw LLMError(code: .configuration, message: "llm.azure.endpoint is not set",
                               fix: "set llm.azure.endpoint (https://RESOURCE.openai.azure.com) or AZURE_OPENAI_ENDPOINT")
            }
            let endpoint = try checked(rawEndpoint, setting: "llm.azure.endpoint")
            guard let deployment = c.azure?.deployment ?? c.model, !deployment.isEmpty else {
                throw LLMError(code: .configuration, message: "llm.azure.deployment is not set",
                               fix: "set llm.azure.deployment (the deployment name in the Azure portal) or AZURE_OPENAI_DEPLOYMENT")
            }
            let version = c.azure?.apiVersion ?? LLMConfiguration.defaultAzureAPIVersion
            let path = deployment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? deployment
            let query = version.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? version
            return "\(endpoint)/openai/deployments/\(path)/chat/completions?api-version=\(query)"
        }
    }

    /// The Azure deployment name, or nil for OpenAI-compatible servers.
    var azureDeployment: String? {
        configuration.provider == .azure ? (configuration.azure?.deployment ?? configuration.model) : nil
    }

    /// Completes a chat. `options.model` overrides `llm.model` (ignored on Azure, where the
    /// deployment decides); `temperature` and `maxTokens` fall back to the configuration's.
    public func complete(_ messages: [ChatMessage], options: ChatOptions) async throws -> ChatResponse {
        try await complete(messages, options: options, tools: [])
    }

    /// Completes a chat offering `tools` the model may call; its calls come back as
    /// ``ChatContent/functionCall(callID:name:arguments:)`` contents of the assistant message.
    public func complete(_ messages: [ChatMessage], options: ChatOptions, tools: [ChatToolDefinition]) async throws -> ChatResponse {
        let body = try requestBody(messages, options: options, tools: tools)
        let model = displayModel(options)
        let request = httpRequest(body: body)

        var attempt = 0
        while true {
            try Task.checkCancellation()
            let started = ContinuousClock.now
            let outcome: Result<HTTPResponse, LLMError>
            do {
                outcome = .success(try await transport.send(request))
            } catch let failure as HTTPTransportFailure {
                if failure.kind == .cancelled { throw CancellationError() }
                outcome = .failure(transportError(failure))
            }
            let elapsed = ContinuousClock.now - started

            let error: LLMError
            var retryHeaders: [String: String] = [:]
            switch outcome {
            case .success(let response) where (200..<300).contains(response.status):
                let result = try decode(response, model: model)
                var meta: Logger.Metadata = ["llm.model": "\(result.model ?? model)", "llm.status": "\(response.status)",
                                             "llm.attempt": "\(attempt + 1)", "llm.elapsed": "\(elapsed)"]
                if let u = result.usage {
                    meta["llm.prompt_tokens"] = "\(u.promptTokens)"
                    meta["llm.completion_tokens"] = "\(u.completionTokens)"
                }
                logger.debug("chat completion", metadata: meta)
                return result
            case .success(let response):
                error = httpError(response, model: model)
                retryHeaders = response.headers
            case .failure(let e):
                error = e
            }
            guard Self.isRetryable(error), attempt < retry.maxRetries else { throw error }
            let delay = retry.delay(attempt: attempt, headers: retryHeaders)
            logger.info("retrying chat completion", metadata: [
                "llm.model": "\(model)", "llm.error": "\(error.code)", "llm.attempt": "\(attempt + 1)",
                "llm.retry_in": "\(delay)",
            ])
            try await retry.sleep(delay)
            attempt += 1
        }
    }

    /// 429, 5xx and connection failures. A total timeout is not retried: the next attempt would
    /// likely take as long again.
    static func isRetryable(_ error: LLMError) -> Bool {
        error.code == .rateLimited || error.code == .serverError
            || error.code == .connectionFailed || error.code == .connectTimeout
    }

    /// The POST with the credential header; the headers hold the secret, so never log them.
    func httpRequest(body: Data) -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Accept", "application/json")]
        switch credential {
        case .none: break
        case .bearer(let token, _): headers.append(("Authorization", "Bearer \(token)"))
        case .apiKey(let key, _): headers.append(("api-key", key))
        }
        return HTTPRequest(url: endpoint, headers: headers, body: body,
                           connectTimeout: configuration.effectiveConnectTimeout,
                           timeout: configuration.effectiveTimeout)
    }

    func displayModel(_ options: ChatOptions) -> String {
        azureDeployment ?? options.model ?? configuration.model ?? "(no model)"
    }

    /// The exact JSON body sent (sorted keys). Public for `jobs check`-style previews and tests.
    public func requestBody(_ messages: [ChatMessage], options: ChatOptions, tools: [ChatToolDefinition] = [],
                            stream: Bool = false) throws -> Data {
        var model: String? = nil
        if configuration.provider == .openai {
            model = options.model ?? configuration.model
            guard let m = model, !m.isEmpty else {
                throw LLMError(code: .configuration, message: "no model is set for the chat completion",
                               fix: "set llm.model in signoff.yaml, SIGNOFF_LLM_MODEL, or the step's model:")
            }
        }
        let wire = ChatCompletionsWire.Request(
            model: model,
            messages: ChatCompletionsWire.messages(messages),
            temperature: options.temperature ?? configuration.temperature,
            maxTokens: options.maxTokens ?? configuration.maxTokens,
            tools: tools.isEmpty ? nil : tools.map {
                .init(function: .init(name: $0.name, description: $0.description, parameters: $0.parameters))
            },
            stream: stream ? true : nil,
            streamOptions: stream ? .init(includeUsage: true) : nil)
        return try JSONEncoder.sorted.encode(wire)
    }

    // MARK: - Errors

    private var secrets: [String] { credential.secret.map { [$0] } ?? [] }

    private func scrub(_ text: String) -> String { SecretScrubber.scrub(text, secrets: secrets) }

    private var serverLocation: String {
        configuration.provider == .azure ? (configuration.azure?.endpoint ?? endpoint) : (configuration.baseURL ?? LLMConfiguration.defaultBaseURL)
    }

    func transportError(_ failure: HTTPTransportFailure) -> LLMError {
        let detail = scrub(failure.detail)
        let timeoutSetting = "llm.timeout (\(configuration.effectiveTimeout)s)"
        let connectSetting = "llm.connect_timeout (\(configuration.effectiveConnectTimeout)s)"
        switch failure.kind {
        case .connectionFailed:
            let local = serverLocation.contains("127.0.0.1") || serverLocation.contains("localhost") || serverLocation.contains("[::1]")
            return LLMError(code: .connectionFailed,
                            message: "cannot connect to the LLM server at \(serverLocation): \(detail)",
                            fix: local ? "start the server (for Ollama: `ollama serve`) or correct llm.base_url / SIGNOFF_LLM_BASE_URL"
                                : "check llm.base_url / SIGNOFF_LLM_BASE_URL (or llm.azure.endpoint) and the network")
        case .connectTimeout:
            return LLMError(code: .connectTimeout,
                            message: "connecting to \(serverLocation) took longer than the connect timeout \(connectSetting)",
                            fix: "check that the server is reachable, or raise llm.connect_timeout")
        case .timeout:
            return LLMError(code: .timeout,
                            message: "the chat completion from \(serverLocation) took longer than the total timeout \(timeoutSetting)",
                            fix: "raise llm.timeout (SIGNOFF_LLM_TIMEOUT), lower the step's max_tokens, or use a faster model")
        case .cancelled:
            return LLMError(code: .transport, message: "the chat completion was cancelled", fix: "")
        case .other:
            return LLMError(code: .transport, message: "the request to \(serverLocation) failed: \(detail)",
                            fix: "check llm.base_url and the server's TLS setup")
        }
    }

    func httpError(_ response: HTTPResponse, model: String) -> LLMError {
        let envelope = try? JSONDecoder().decode(ChatCompletionsWire.ErrorEnvelope.self, from: response.body)
        var providerText = envelope?.message ?? String(decoding: response.body.prefix(300), as: UTF8.self)
        providerText = scrub(providerText.trimmingCharacters(in: .whitespacesAndNewlines))
        let said = providerText.isEmpty ? "" : ": \(providerText)"
        let status = response.status
        let code = envelope?.code?.lowercased() ?? ""
        let lower = providerText.lowercased()
        let azure = configuration.provider == .azure

        if code == "context_length_exceeded" || code == "string_above_max_length"
            || lower.contains("context length") || lower.contains("context_length_exceeded")
            || lower.contains("context window") || lower.contains("context size")
            || lower.contains("maximum context") {
            return LLMError(code: .contextLengthExceeded,
                            message: "the prompt is too long for model \(model)'s context window (HTTP \(status)\(said))",
                            fix: "shorten the step's prompt or its inputs, lower max_tokens, or use a model with a larger context",
                            status: status)
        }
        switch status {
        case 401, 403:
            let fix: String
            if azure {
                fix = credential == .none
                    ? "set the Azure api-key (llm.azure.api_key_file, AZURE_OPENAI_API_KEY or SIGNOFF_LLM_API_KEY) or a token (llm.azure.token_file / token_env)"
                    : "check the Azure credential from \(credential.source ?? "-"): the api-key (llm.azure.api_key_file / AZURE_OPENAI_API_KEY / SIGNOFF_LLM_API_KEY) or refresh the token in llm.azure.token_file / token_env"
            } else {
                fix = credential == .none
                    ? "no API key was sent: set llm.api_key_file, llm.api_key_env or SIGNOFF_LLM_API_KEY"
                    : "check the API key from \(credential.source ?? "-") (llm.api_key_file, llm.api_key_env or SIGNOFF_LLM_API_KEY)"
            }
            return LLMError(code: status == 401 ? .unauthorized : .forbidden,
                            message: status == 401
                                ? "the LLM provider at \(serverLocation) rejected the credential (HTTP 401\(said))"
                                : "the credential may not use \(azure ? "deployment" : "model") \(model) at \(serverLocation) (HTTP 403\(said))",
                            fix: fix, status: status)
        case 404:
            if azure {
                return LLMError(code: .modelNotFound,
                                message: "Azure OpenAI deployment \"\(model)\" was not found at \(serverLocation) (HTTP 404\(said))",
                                fix: "check llm.azure.deployment (the deployment name, not the model name), llm.azure.endpoint and llm.azure.api_version",
                                status: status)
            }
            return LLMError(code: .modelNotFound,
                            message: "model \"\(model)\" was not found at \(serverLocation) (HTTP 404\(said))",
                            fix: "check llm.model or the step's model: (for Ollama run `ollama pull \(model)`), and that llm.base_url ends with /v1",
                            status: status)
        case 429:
            return LLMError(code: .rateLimited,
                            message: "the LLM provider at \(serverLocation) is rate limiting requests (HTTP 429\(said))",
                            fix: "retry later, raise llm.max_retries, or raise the quota", status: status)
        case 500...599:
            return LLMError(code: .serverError,
                            message: "the LLM server at \(serverLocation) failed (HTTP \(status)\(said))",
                            fix: "retry later; for a local server, check its log", status: status)
        default:
            return LLMError(code: .badRequest,
                            message: "the LLM provider at \(serverLocation) refused the request for model \(model) (HTTP \(status)\(said))",
                            fix: "check the step's model, temperature and max_tokens", status: status)
        }
    }

    func decode(_ response: HTTPResponse, model: String) throws -> ChatResponse {
        let decoded: ChatCompletionsWire.Response
        do {
            decoded = try JSONDecoder().decode(ChatCompletionsWire.Response.self, from: response.body)
        } catch {
            let head = scrub(String(decoding: response.body.prefix(200), as: UTF8.self))
            throw LLMError(code: .invalidResponse,
                           message: "the answer from \(serverLocation) is not a chat completion: \(head)",
                           fix: "check that llm.base_url points at an OpenAI-compatible /v1 API", status: response.status)
        }
        guard let result = ChatCompletionsWire.chatResponse(decoded) else {
            throw LLMError(code: .invalidResponse,
                           message: "the answer from \(serverLocation) for model \(model) has no choices",
                           fix: "check the server's log", status: response.status)
        }
        return result
    }
}
